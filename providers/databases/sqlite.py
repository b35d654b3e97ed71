"""SQLite: an online `.dump` of the live file (one read transaction), restored into a new file.

`clientConfig.url` is `sqlite:///abs/path.db`. Restore replays the SQL into `<path>.restoring` with
`sqlite3 -bail` and renames it over the target only when the replay succeeded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from providers.databases.base import (
    ClientTLS,
    Connection,
    Probe,
    ProcessSpec,
    RestoreSpec,
    TaskParams,
    resolve_connection,
)
from providers.databases.endpoint import appbinding_name
from providers.databases.grammars import SQLITE3
from providers.databases.options import (
    COMMANDS,
    FILES,
    OTHER,
    OUTPUT,
    TARGET,
    ToolOptions,
    check_backup_cmd,
    refuse,
    tool_options,
)
from stashplan.errors import TransferError

_SQLITE_REFUSED = {**refuse(COMMANDS, "-cmd", "-interactive", "-unsafe-testing", "-nonce"), **refuse(FILES, "-init"),
                   **refuse(OUTPUT, "-echo", "-header", "-html", "-markdown", "-json", "-line", "-list", "-stats",
                            "-memtrace", "-vfstrace"),
                   **refuse(TARGET, "-append", "-deserialize", "-zip", "-A", "-archive", "-vfs", "-multiplex"),
                   **refuse(OTHER, "-help", "-version")}
OPTIONS = {"sqlite3": tool_options(SQLITE3, ("-bail", "-batch", "-safe", "-nofollow", "-readonly"), _SQLITE_REFUSED)}
BACKUP_TOOLS: tuple[str, ...] = ("sqlite3",)


class SQLiteProvider:
    name = "sqlite"
    app_kind = "SQLite"
    filename = "dumpfile.sql"
    empty_dump_ok = False  # `.dump` always writes its transaction lines
    backup_tools = BACKUP_TOOLS
    restore_tool = "sqlite3"
    options: dict[str, ToolOptions] = OPTIONS

    def dump_tool(self, conn_database: str, params: TaskParams) -> str:
        return check_backup_cmd(params.backup_cmd, BACKUP_TOOLS) or "sqlite3"

    def connection(
        self, appbinding: dict, secret: Mapping[str, str], workdir: Path, tls: ClientTLS | None = None
    ) -> Connection:
        if tls is not None:
            raise TransferError(f"{appbinding_name(appbinding)}: spec.tlsSecret is not supported for sqlite")
        conn = resolve_connection(appbinding, secret, workdir, default_port=None)
        if conn.path.startswith("/"):  # sqlite:///abs and sqlite:////abs both name /abs
            conn = replace(conn, path="/" + conn.path.lstrip("/"))
        if not conn.path or not Path(conn.path).is_absolute():
            raise TransferError(
                f"{appbinding_name(appbinding)}: spec.clientConfig.url must be sqlite:///abs/path.db"
            )
        return conn

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        if restore:  # the target file may not exist yet: only the client must work
            return Probe(ProcessSpec(("sqlite3", "-batch", ":memory:", "SELECT 1;")))
        argv = ("sqlite3", "-readonly", "-batch", conn.path, "SELECT count(*) FROM sqlite_master;")
        return Probe(ProcessSpec(argv), fatal=("unable to open", "not a database", "malformed"))

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec:
        OPTIONS[self.dump_tool("", params)].check(params.args)
        return ProcessSpec(("sqlite3", "-readonly", "-batch", *params.args, conn.path, ".dump"))

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        target = Path(conn.path)
        staging = target.with_name(target.name + ".restoring")
        if not target.parent.is_dir():
            raise TransferError(f"sqlite restore target directory {target.parent} does not exist")
        staging.unlink(missing_ok=True)
        OPTIONS["sqlite3"].check(params.args)

        def finish(ok: bool) -> None:
            if ok:
                for stale in ("-wal", "-shm"):  # journals of the file being replaced
                    target.with_name(target.name + stale).unlink(missing_ok=True)
                os.replace(staging, target)
            else:
                staging.unlink(missing_ok=True)

        return RestoreSpec(
            ProcessSpec(("sqlite3", "-bail", "-batch", *params.args, str(staging))), finish=finish
        )
