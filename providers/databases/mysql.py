r"""MySQL and MariaDB: `mysqldump`/`mariadb-dump --single-transaction`, restore with `mysql`/`mariadb`.

A database named in the AppBinding URL/service path is dumped alone (and restored into the target's
database), the Task's default `--all-databases` then left out of `args`; otherwise `--all-databases`. The restore client runs with `--binary-mode` (no client command but
DELIMITER, `\C` and `\-`: no `\!`, `source`, `connect`); a restore into a named database runs with
`--skip-comments` and a single-byte-safe `--default-character-set` (utf8mb4 unless args name another), rewrites
the dump's `USE`/`CREATE`/`DROP`/`ALTER DATABASE` to it, refuses a dump of several databases and anything that
changes how statements are lexed (`providers.databases.mysql_confine`), and runs as an account of its own that
can use that database only (`providers.databases.mysql_account`: the guarantee, whatever the filter misses).
`--one-database DB` in a restore's `args` (DB its one operand, else the AppBinding's database, which it must
equal) is done by `providers.databases.mysql_one_database` (the client in binary mode does not follow USE).
With `jobs` > 1 (and no `--one-database`) that restore runs a table per connection, each with its own filter,
as the same account (`providers.databases.mysql_parallel`).
The password travels in MYSQL_PWD only. TLS: caBundle (else the tlsSecret's ca.crt) is `--ssl-ca`, the tlsSecret's certificate and key `--ssl-cert`/`--ssl-key` (paths).

`multiDumpArgs` (Stash v2024.12.18): one dump per `$args=` part, each with the connection args and the
`args` param, run one after another by `providers.databases.sequence` into one stream, so one snapshot;
the first failing dump fails the whole backup. A part that selects its own databases drops the
`--all-databases` of `args` (the Task's default) and the AppBinding's database.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from providers.databases.base import (
    ClientTLS,
    Connection,
    ParallelClients,
    Probe,
    ProcessSpec,
    RestoreSpec,
    TaskParams,
    resolve_connection,
)
from providers.databases.getopt import Parsed
from providers.databases.grammars import MARIADB_CLIENT, MARIADB_DUMP, MYSQL_CLIENT, MYSQLDUMP
from providers.databases.mysql_account import RestoreAccount
from providers.databases.mysql_confine import MySQLConfine
from providers.databases.mysql_flavour import adapt
from providers.databases.mysql_lexemes import HEAD
from providers.databases.mysql_one_database import Chained, OneDatabase
from providers.databases.mysql_parallel import MySQLDumpSplitter
from providers.databases.mysql_session import SAFE_CHARSETS
from providers.databases.options import (
    COMMANDS,
    ERRORS,
    FILES,
    OTHER,
    OUTPUT,
    TARGET,
    ToolOptions,
    check_backup_cmd,
    rebuild,
    refuse,
    tool_options,
)
from stashplan.errors import TransferError

_CONNECTION = {**refuse(TARGET, "--host", "--port", "--user", "--password", "--socket", "--protocol", "--ssl-ca",
                        "--ssl-capath", "--ssl-cert", "--ssl-key", "--ssl-crl", "--ssl-crlpath", "--ssl-mode",
                        "--login-path", "--default-auth", "--server-public-key-path", "--get-server-public-key"),
               **refuse(FILES, "--defaults-file", "--defaults-extra-file", "--defaults-group-suffix", "--no-defaults",
                        "--plugin-dir", "--print-defaults", "--load-data-local-dir", "--character-sets-dir"),
               **refuse(OUTPUT, "--debug", "--debug-check", "--debug-info", "--xml"), **refuse(ERRORS, "--force"),
               **refuse(OTHER, "--help", "--version")}
_DUMP_ALLOWED = (
    "--all-databases", "--databases", "--add-drop-database", "--add-drop-table", "--add-drop-trigger", "--add-locks",
    "--complete-insert", "--compact", "--compress", "--create-options", "--disable-keys", "--events",
    "--extended-insert", "--hex-blob", "--insert-ignore", "--lock-tables", "--no-create-db", "--no-create-info",
    "--no-data", "--no-tablespaces", "--opt", "--skip-opt", "--quick", "--quote-names", "--replace", "--routines",
    "--single-transaction", "--comments", "--triggers", "--tz-utc", "--order-by-primary", "--column-statistics",
    "--verbose", "--flush-privileges", "--dump-date", "--system", "--no-autocommit", "--allow-keywords",
    "--ignore-table", "--default-character-set", "--where", "--max-allowed-packet", "--net-buffer-length",
    "--set-gtid-purged", "--ignore-database", "--ignore-table-data",
)
_DUMP_REFUSED = {**_CONNECTION, **refuse(OUTPUT, "--result-file", "--tab", "--log-error", "--log-queries")}
_CLIENT_REFUSED = {**_CONNECTION, **refuse(TARGET, "--database", "--connect-expired-password", "--server-arg"),
                   **refuse(COMMANDS, "--execute", "--init-command", "--pager", "--system-command", "--local-infile",
                            "--named-commands", "--enable-cleartext-plugin"),
                   **refuse(OUTPUT, "--html", "--tee")}
_CLIENT_ALLOWED = ("--verbose", "--one-database", "--binary-mode", "--comments", "--show-warnings",
                   "--sigint-ignore", "--compress", "--default-character-set", "--max-allowed-packet",
                   "--net-buffer-length")
OPTIONS = {
    **{g.tool: tool_options(g, _DUMP_ALLOWED, _DUMP_REFUSED, positional=True) for g in (MYSQLDUMP, MARIADB_DUMP)},
    **{g.tool: tool_options(g, _CLIENT_ALLOWED, _CLIENT_REFUSED, operand_with=("--one-database",))
       for g in (MYSQL_CLIENT, MARIADB_CLIENT)},
}
BACKUP_TOOLS: tuple[str, ...] = ("mysqldump", "mariadb-dump")

_SELECTS = {"--all-databases", "--databases"}


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
        names = OPTIONS[cmd].names(args)
        if conn.database:  # the database the AppBinding names, alone: the Task's default --all-databases yields
            if "--all-databases" in names:
                args = rebuild([p for p in OPTIONS[cmd].parse(args) if p.opt is None or p.opt.name != "--all-databases"])
            return [cmd, *self._target(conn), "--single-transaction", *args, "--", conn.database]
        argv = [cmd, *self._target(conn), "--single-transaction", *args]
        if not names & _SELECTS:
            argv.append("--all-databases")
        return argv

    def _part_argv(self, cmd: str, conn: Connection, common: Sequence[str], part: Sequence[str]) -> list[str]:
        if not OPTIONS[cmd].names(part) & _SELECTS:
            return self._dump_argv(cmd, conn, [*common, *part])
        kept = [p for p in OPTIONS[cmd].parse(common) if p.opt is None or p.opt.name != "--all-databases"]
        return [cmd, *self._target(conn), "--single-transaction", *rebuild(kept), *part]

    def for_client(self, direction: str, params: TaskParams) -> tuple[TaskParams, list[str]]:
        """`params` with the options only Oracle MySQL's client knows adapted to the client that will run
        (`providers.databases.mysql_flavour`), and a note per option translated away; TransferError for one
        that has no equivalent. `direction` is "backup" or "restore"."""
        tool = self.dump_tool("", params) if direction == "backup" else self._client
        args, notes = adapt(OPTIONS[tool], params.args)
        parts = []
        for i, part in enumerate(params.multi_dump_args if direction == "backup" else ()):
            words, more = adapt(OPTIONS[tool], part, f"multiDumpArgs (part {i + 1})")
            parts.append(tuple(words))
            notes += more
        return replace(params, args=tuple(args), multi_dump_args=tuple(parts)), notes

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec:
        cmd = self.dump_tool("", params)
        params, _ = self.for_client("backup", params)
        OPTIONS[cmd].check(params.args)
        for i, part in enumerate(params.multi_dump_args):
            OPTIONS[cmd].check(part, f"multiDumpArgs (part {i + 1})")
        if not params.multi_dump_args:
            return ProcessSpec(tuple(self._dump_argv(cmd, conn, params.args)), self._env(conn))
        dumps = [self._part_argv(cmd, conn, params.args, part) for part in params.multi_dump_args]
        argv = (sys.executable, "-m", "providers.databases.sequence", json.dumps(dumps))
        return ProcessSpec(argv, self._env(conn), label=Path(cmd).name)

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        params, _ = self.for_client("restore", params)
        parsed = OPTIONS[self._client].check(params.args)
        one = self._one_database(conn, parsed)
        if one is not None:  # done by the stream filter: the client in binary mode does not follow USE
            params = replace(params, args=tuple(rebuild(
                [p for p in parsed if p.opt is not None and p.opt.name != "--one-database"])))
        argv = [self._client, *self._target(conn), "--batch", "--binary-mode", *params.args]
        if not conn.database:
            if one is None:
                return RestoreSpec(ProcessSpec(tuple(argv), self._env(conn)))
            argv += [f"--database={one}", "--skip-comments",
                     f"--default-character-set={self._client_charset(params.args)}"]
            return RestoreSpec(ProcessSpec(tuple(argv), self._env(conn)), lambda: OneDatabase(one))
        target = conn.database
        account = RestoreAccount(self._client, self._target(conn), self._env(conn), conn.username, target,
                                 tls=bool(conn.ca_file or conn.cert_file))
        confined = replace(conn, username=account.name, password=account.password)
        argv = [self._client, *self._target(confined), "--batch", "--binary-mode", *params.args,
                f"--database={target}", "--skip-comments",
                f"--default-character-set={self._client_charset(params.args)}"]
        make = (lambda: MySQLConfine(target)) if one is None else (lambda: Chained(OneDatabase(one), MySQLConfine(target)))
        spec = ProcessSpec(tuple(argv), self._env(confined))
        parallel = None
        if params.jobs > 1 and one is None:  # the same client, account and filter on each connection, a table each
            worker = replace(spec, argv=(*spec.argv, "--skip-column-names", "--unbuffered"))  # end markers at once
            parallel = ParallelClients(worker, params.jobs, make_splitter=MySQLDumpSplitter,
                                       worker_filter=lambda: MySQLConfine(target), unit_padding=HEAD)
        return RestoreSpec(spec, make, finish=account.finish, start=account.start, parallel=parallel)

    def _one_database(self, conn: Connection, parsed: Sequence[Parsed]) -> str | None:
        """The database `--one-database` keeps (its operand, else the AppBinding's), None without it; TransferError
        when it names none, or another than the AppBinding's."""
        if not any(p.opt is not None and p.opt.name == "--one-database" for p in parsed):
            return None
        name = next((p.spelled for p in parsed if p.opt is None), None)
        if name is None:
            if not conn.database:
                raise TransferError("task param args: --one-database needs the database to keep (e.g. "
                                    "--one-database testdb): the AppBinding names none")
            return conn.database
        if conn.database and name != conn.database:
            raise TransferError(f"task param args: --one-database {name}: the restore writes only the AppBinding's "
                                f"database, {conn.database}")
        return name

    def _client_charset(self, args: Sequence[str]) -> str:
        """The client character set of a confined restore: the one `args` name (it must keep quotes and
        backslashes single bytes, as the restore filter reads them), else utf8mb4."""
        named = [p.value for p in OPTIONS[self._client].parse(args)
                 if p.opt is not None and p.opt.name == "--default-character-set" and p.value]
        charset = named[-1] if named else "utf8mb4"
        if charset.lower() not in SAFE_CHARSETS:
            raise TransferError(f"task param args: --default-character-set={charset} is not allowed for a restore "
                                "into a named database (its characters can hide quotes and backslashes)")
        return charset
