"""MySQL and MariaDB: `mysqldump`/`mariadb-dump --single-transaction`, restore with `mysql`/`mariadb`.

A database named in the AppBinding URL/service path is dumped alone (and restored into the target's
database); otherwise `--all-databases`. The password travels in MYSQL_PWD only. TLS: caBundle (else the
tlsSecret's ca.crt) is `--ssl-ca`, the tlsSecret's certificate and key `--ssl-cert`/`--ssl-key` (paths).

`multiDumpArgs` (Stash v2024.12.18): one dump per `$args=` part, each with the connection args and the
`args` param, run one after another by `providers.databases.sequence` into one stream, so one snapshot;
the first failing dump fails the whole backup. A part that selects its own databases drops the
`--all-databases` of `args` (the Task's default) and the AppBinding's database.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
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
from providers.databases.options import (
    COMMANDS,
    ERRORS,
    FILES,
    OUTPUT,
    TARGET,
    ToolOptions,
    check_backup_cmd,
    refuse,
    tool_options,
)

_CONNECTION = {**refuse(TARGET, "--host", "-h", "--port", "-P", "--user", "-u", "--password", "-p", "--socket", "-S",
                        "--protocol", "--ssl-ca", "--ssl-cert", "--ssl-key", "--login-path", "--bind-address"),
               **refuse(FILES, "--defaults-file", "--defaults-extra-file", "--defaults-group-suffix",
                        "--plugin-dir", "--print-defaults", "--load-data-local-dir"),
               **refuse(OUTPUT, "--log-error", "--debug", "-#", "--tee"), **refuse(ERRORS, "--force", "-f")}
_DUMP_ALLOWED = (
    "--all-databases", "-A", "--databases", "-B", "--add-drop-database", "--add-drop-table", "--skip-add-drop-table",
    "--add-drop-trigger", "--add-locks", "--skip-add-locks", "--complete-insert", "-c", "--compact", "--compress",
    "-C", "--create-options", "--skip-create-options", "--disable-keys", "--skip-disable-keys", "--events", "-E",
    "--skip-events", "--extended-insert", "-e", "--skip-extended-insert", "--hex-blob", "--insert-ignore",
    "--lock-tables", "-l", "--skip-lock-tables", "--no-create-db", "-n", "--no-create-info", "-t", "--no-data",
    "-d", "--no-tablespaces", "-y", "--opt", "--skip-opt", "--quick", "-q", "--skip-quick", "--quote-names", "-Q",
    "--skip-quote-names", "--replace", "--routines", "-R", "--skip-routines", "--single-transaction",
    "--skip-comments", "--comments", "--triggers", "--skip-triggers", "--tz-utc", "--skip-tz-utc",
    "--order-by-primary", "--skip-column-statistics", "--column-statistics", "--verbose", "-v", "--flush-privileges",
    "--skip-dump-date", "--dump-date", "--system", "--no-autocommit", "--allow-keywords",
)
_DUMP_VALUED = ("--ignore-table", "--default-character-set", "--where", "-w", "--max-allowed-packet",
                "--net-buffer-length", "--set-gtid-purged", "--ignore-database", "--ignore-table-data")
_DUMP_REFUSED = {**_CONNECTION, **refuse(OUTPUT, "--result-file", "-r", "--tab", "-T", "--xml", "-X"),
                 **refuse(COMMANDS, "--init-command")}
_CLIENT_REFUSED = {**_CONNECTION, **refuse(COMMANDS, "--execute", "-e", "--init-command", "--pager",
                                           "--system-command", "--local-infile"),
                   **refuse(OUTPUT, "--html", "-H", "--xml", "-X")}
_CLIENT_ALLOWED = ("--verbose", "-v", "--one-database", "-o", "--binary-mode", "--comments", "-c",
                   "--skip-comments", "--show-warnings", "--sigint-ignore", "--compress", "-C")
_CLIENT_VALUED = ("--default-character-set", "--max-allowed-packet", "--net-buffer-length")
OPTIONS = {
    **{t: tool_options(t, _DUMP_ALLOWED, _DUMP_VALUED, _DUMP_REFUSED, positional=True) for t in ("mysqldump", "mariadb-dump")},
    **{t: tool_options(t, _CLIENT_ALLOWED, _CLIENT_VALUED, _CLIENT_REFUSED) for t in ("mysql", "mariadb")},
}
BACKUP_TOOLS: tuple[str, ...] = ("mysqldump", "mariadb-dump")

_ALL = ("--all-databases", "-A")
_SELECTS = (*_ALL, "--databases", "-B")


class MySQLProvider:
    app_kind = "MySQL"
    filename = "dumpfile.sql"
    empty_dump_ok = False  # a dump always writes its header
    backup_tools = BACKUP_TOOLS
    options: dict[str, ToolOptions] = OPTIONS

    def dump_tool(self, conn_database: str, params: TaskParams) -> str:
        return check_backup_cmd(params.backup_cmd, BACKUP_TOOLS) or self._dump_cmd

    def __init__(self, name: str = "mysql") -> None:
        self.name = name
        mariadb = name == "mariadb"
        self.app_kind = "MariaDB" if mariadb else "MySQL"
        self._dump_cmd = "mariadb-dump" if mariadb else "mysqldump"
        self._client = "mariadb" if mariadb else "mysql"
        self.restore_tool = self._client

    def connection(
        self, appbinding: dict, secret: Mapping[str, str], workdir: Path, tls: ClientTLS | None = None
    ) -> Connection:
        return resolve_connection(appbinding, secret, workdir, default_port=3306, default_user="root", tls=tls)

    def _env(self, conn: Connection) -> dict[str, str]:
        return {"MYSQL_PWD": conn.password} if conn.password else {}

    def _target(self, conn: Connection) -> list[str]:
        args = [f"--host={conn.host}", f"--user={conn.username}"]
        if conn.port:
            args.append(f"--port={conn.port}")
        if conn.ca_file:
            args.append(f"--ssl-ca={conn.ca_file}")
        if conn.cert_file and conn.key_file:
            args += [f"--ssl-cert={conn.cert_file}", f"--ssl-key={conn.key_file}"]
        return args

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        argv = (self._client, *self._target(conn), "--connect-timeout=5", "--batch", "--execute=SELECT 1;")
        return Probe(ProcessSpec(argv, self._env(conn)), fatal=("Access denied", "Unknown database"))

    def _dump_argv(self, cmd: str, conn: Connection, args: Sequence[str]) -> list[str]:
        argv = [cmd, *self._target(conn), "--single-transaction", *args]
        selects = any(a in _SELECTS for a in args)
        if conn.database:
            argv += ["--", conn.database]
        elif not selects:
            argv.append("--all-databases")
        return argv

    def _part_argv(self, cmd: str, conn: Connection, common: Sequence[str], part: Sequence[str]) -> list[str]:
        if not any(a in _SELECTS for a in part):
            return self._dump_argv(cmd, conn, [*common, *part])
        return [cmd, *self._target(conn), "--single-transaction", *(a for a in common if a not in _ALL), *part]

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec:
        cmd = self.dump_tool("", params)
        OPTIONS[cmd].check(params.args)
        for i, part in enumerate(params.multi_dump_args):
            OPTIONS[cmd].check(part, f"multiDumpArgs (part {i + 1})")
        if not params.multi_dump_args:
            return ProcessSpec(tuple(self._dump_argv(cmd, conn, params.args)), self._env(conn))
        dumps = [self._part_argv(cmd, conn, params.args, part) for part in params.multi_dump_args]
        argv = (sys.executable, "-m", "providers.databases.sequence", json.dumps(dumps))
        return ProcessSpec(argv, self._env(conn), label=Path(cmd).name)

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        OPTIONS[self._client].check(params.args)
        argv = [self._client, *self._target(conn), "--batch", *params.args]
        if conn.database:
            argv.append(f"--database={conn.database}")
        return RestoreSpec(ProcessSpec(tuple(argv), self._env(conn)))
