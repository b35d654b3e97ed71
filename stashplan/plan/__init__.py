"""stashplan.plan."""
