"""The `stashplan` command. `stashplan repo ...` (what a backup Job and a restore run) starts on the
repository CLI alone, without the planner, pydantic or the cluster clients: about 0.3 s less per run.
Everything else goes to the full CLI in `stashplan.cli`.
"""

from __future__ import annotations

import logging
import os
import sys

VERBOSE = ("-v", "--verbose")


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = list(sys.argv[1:] if argv is None else argv)
    flags = 0
    while flags < len(args) and args[flags] in VERBOSE:
        flags += 1
    if flags < len(args) and args[flags] == "repo":
        from stashplan.operator.logs import configure_logging
        from stashplan.repository.cli import app

        level = logging.DEBUG if flags else logging.INFO
        configure_logging(level, structured=not sys.stderr.isatty())
        app(args=args[flags + 1 :], prog_name="stashplan repo")
        return
    if args[flags:flags + 2] == ["transfer", "pg-restore"]:  # a restore pipe: the lean start as for repo
        from stashplan.transfer.pg_restore_cli import main as pg_restore

        pg_restore(args[flags + 2:])
        return
    from stashplan.cli import app as full

    full(args=args, prog_name="stashplan")
