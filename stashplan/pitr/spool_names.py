"""Names in the prefetch spool (pure constants): what `restore_command`'s shell, `spool_serve` and the
prefetching processes agree on."""

SPOOL_DIR = "stashplan_wal_prefetch"  # relative: restore_command runs in the data directory
PENDING = ".pending"  # `<name>.pending` holds the pid of the process fetching `<name>`
REFILL = "refill.pid"  # the process fetching the next segments while recovery replays
NO_HISTORY = "00000001.history"  # PostgreSQL asks for the parent's history when it promotes from timeline 1
