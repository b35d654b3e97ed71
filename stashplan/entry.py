"""The `stashplan` command. `stashplan repo ...` (what a backup Job and a restore run) and `stashplan pg ...`
(archive_command, restore_command) start on their own CLI alone, without the planner, pydantic or the cluster
clients: about 0.3 s less per run; `pg wal-push --spool` for a file pushed ahead imports no CLI at all.
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
    if flags < len(args) and args[flags] == "pg":  # archive_command and restore_command: the lean start as well
        if args[flags + 1 : flags + 2] == ["wal-push"] and _pushed_ahead(args[flags + 2 :]):
            return
        if args[flags + 1 : flags + 2] == ["wal-fetch"]:
            from stashplan.pitr.spool_serve import answer_from_args

            answered = answer_from_args(args[flags + 2 :])  # fetched ahead, or known not to exist
            if answered:
                print(f"{args[-2]}: not in the archive", file=sys.stderr)
            if answered is not None:
                sys.exit(answered)
        from stashplan.operator.logs import configure_logging
        from stashplan.pitr.cli import app as pg

        configure_logging(logging.DEBUG if flags else logging.INFO, structured=not sys.stderr.isatty())
        pg(args=args[flags + 1 :], prog_name="stashplan pg")
        return
    if args[flags:flags + 2] == ["transfer", "pg-restore"]:  # a restore pipe: the lean start as for repo
        from stashplan.transfer.pg_restore_cli import main as pg_restore

        pg_restore(args[flags + 2:])
        return
    from stashplan.cli import app as full

    full(args=args, prog_name="stashplan")


def _pushed_ahead(args: list[str]) -> bool:
    """`pg wal-push --spool DIR ... PATH` for a file an earlier call pushed ahead: answered before the CLI is
    even imported (PostgreSQL waits for every archive_command)."""
    spool = next((a.split("=", 1)[1] for a in args if a.startswith("--spool=")), None)
    if spool is None and "--spool" in args[:-1]:
        spool = args[args.index("--spool") + 1]
    if spool is None or not args or args[-1].startswith("-"):
        return False
    from pathlib import Path

    from stashplan.pitr.lookahead import pushed_ahead

    try:
        done = pushed_ahead(Path(spool), Path(args[-1]))
    except (OSError, ValueError):
        return False  # the CLI reports it
    if done:
        print(f"{Path(args[-1]).name}: pushed ahead", file=sys.stderr)
    return done
