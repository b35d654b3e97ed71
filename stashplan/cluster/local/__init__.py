"""The embedded default cluster (local mode): the object store in one SQLite file (store), the cron and job
controllers that fire CronJobs and run Jobs as local processes (controllers), the processes a killed loop left
behind (orphans), and one loop per state file (state_lock) — a stand-in for an API server, a controller-manager
and a kubelet."""
