"""MySQL and MariaDB: `mysqldump`/`mariadb-dump --single-transaction`, restore with `mysql`/`mariadb`.

A database named in the AppBinding URL/service path is dumped alone (and restored into the target's
database); otherwise `--all-databases`. The password travels in MYSQL_PWD only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from providers.databases.base import (
    Connection,
    Probe,
    ProcessSpec,
    RestoreSpec,
    TaskParams,
    resolve_connection,
)
from stashplan.errors import TransferError


class MySQLProvider:
    app_kind = "MySQL"
    filename = "dumpfile.sql"

    def __init__(self, name: str = "mysql") -> None:
        self.name = name
        mariadb = name == "mariadb"
        self.app_kind = "MariaDB" if mariadb else "MySQL"
        self._dump_cmd = "mariadb-dump" if mariadb else "mysqldump"
        self._client = "mariadb" if mariadb else "mysql"

    def connection(self, appbinding: dict, secret: Mapping[str, str], workdir: Path) -> Connection:
        return resolve_connection(appbinding, secret, workdir, default_port=3306, default_user="root")

    def _env(self, conn: Connection) -> dict[str, str]:
        return {"MYSQL_PWD": conn.password} if conn.password else {}

    def _target(self, conn: Connection) -> list[str]:
        args = [f"--host={conn.host}", f"--user={conn.username}"]
        if conn.port:
            args.append(f"--port={conn.port}")
        if conn.ca_file:
            args.append(f"--ssl-ca={conn.ca_file}")
        return args

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        argv = (self._client, *self._target(conn), "--connect-timeout=5", "--batch", "--execute=SELECT 1;")
        return Probe(ProcessSpec(argv, self._env(conn)), fatal=("Access denied", "Unknown database"))

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec:
        cmd = params.backup_cmd or self._dump_cmd
        if Path(cmd).name not in ("mysqldump", "mariadb-dump"):
            raise TransferError(f"backupCMD must be mysqldump or mariadb-dump, not {cmd!r}")
        argv = [cmd, *self._target(conn), "--single-transaction", *params.args]
        selects = any(a in ("--all-databases", "-A", "--databases", "-B") for a in params.args)
        if conn.database:
            argv += ["--", conn.database]
        elif not selects:
            argv.append("--all-databases")
        return ProcessSpec(tuple(argv), self._env(conn))

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        argv = [self._client, *self._target(conn), "--batch", *params.args]
        if conn.database:
            argv.append(f"--database={conn.database}")
        return RestoreSpec(ProcessSpec(tuple(argv), self._env(conn)))
