"""What a backup or restore Job runs: the session context, the dump/restore pipes with every exit code
checked, post-backup actions, status and metrics, and the `stashplan transfer` CLI.
"""
