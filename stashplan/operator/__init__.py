"""What runs only as the loop (`apply --watch`, in a cluster or in local mode): the loop itself, the incremental
scope over an informer cache, Lease leader election, health and metrics endpoints, JSON logs, the per-session
phase log, and the install manifests."""
