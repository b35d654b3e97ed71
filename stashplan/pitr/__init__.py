"""PostgreSQL point-in-time recovery: base backups and archived WAL in a stashplan repository, restore to a point.

Pure modules (walnames, labels, window, recovery_conf, tarscan) compute; walstore, basebackup and restore do
the I/O; cli is `stashplan pg ...`. See docs/repository-format.md ("WAL archive") for the stored layout.
"""
