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
    appbinding_name,
    resolve_connection,
)
from stashplan.errors import TransferError


class SQLiteProvider:
    name = "sqlite"
    app_kind = "SQLite"
    filename = "dumpfile.sql"

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
        if params.backup_cmd and params.backup_cmd != "sqlite3":
            raise TransferError(f"backupCMD must be sqlite3, not {params.backup_cmd!r}")
        return ProcessSpec(("sqlite3", "-readonly", "-batch", *params.args, conn.path, ".dump"))

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        target = Path(conn.path)
        staging = target.with_name(target.name + ".restoring")
        if not target.parent.is_dir():
            raise TransferError(f"sqlite restore target directory {target.parent} does not exist")
        staging.unlink(missing_ok=True)

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
