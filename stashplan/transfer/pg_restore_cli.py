"""`stashplan transfer pg-restore`: a plain pg_dump on stdin restored over several connections. Started without
the rest of the transfer CLI (see stashplan.entry), so that a restore pipe pays no planner or pydantic import.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stashplan.errors import StashplanError
from stashplan.exits import FAILED, fail
from stashplan.transfer.pg_parallel_restore import restore_plain_dump


def pg_restore_command(
    dbname: Annotated[str, typer.Option("--dbname", "-d", help="Database to restore into (it must exist).")],
    host: Annotated[str, typer.Option("--host", "-h", help="Server host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Server port.")] = 5432,
    username: Annotated[str, typer.Option("--username", "-U", help="Role (password from PGPASSWORD).")] = "postgres",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Connections; default: the cores available.")] = 0,
) -> None:
    """Restore a plain pg_dump read on stdin over several connections (data, then indexes and constraints)."""
    try:
        restore_plain_dump(sys.stdin.buffer, host=host, port=port, username=username, dbname=dbname,
                           jobs=jobs or len(os.sched_getaffinity(0)))
    except StashplanError as exc:
        raise fail(exc, FAILED) from None


def main(args: list[str]) -> None:
    """Run the command alone (the lean start `stashplan.entry` uses)."""
    app = typer.Typer(add_completion=False)
    app.command()(pg_restore_command)
    app(args=args, prog_name="stashplan transfer pg-restore")
