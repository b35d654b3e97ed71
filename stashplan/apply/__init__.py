"""The one writer: carrying out a Plan against a Cluster (writer), the Events recorded about what stashplan
does (events), and the metrics of sessions the loop marks Failed (failure_metrics). Nothing else writes planned
changes."""
