r"""PostgreSQL: `pg_dumpall` (Stash's default `backupCMD`), or `pg_dump` of the database named in the
AppBinding's URL/service path, which wins over `backupCMD`; restore with `psql`.

The restore stream drops the superuser's `CREATE ROLE`/`ALTER ROLE ... PASSWORD` lines, as Stash's `sed`
does, so restoring into a server with other credentials never resets the password we connect with; other
`CREATE ROLE` lines tolerate roles that already exist. An existing database is not overwritten: its
`CREATE DATABASE` fails the restore (dump with `--clean` to replace databases).
A newer pg_dump's settings an older server lacks (pg_dump 17's `transaction_timeout` on 15) run only where
known (providers.databases.pg_versions), and a pg_dump older than the server fails naming both versions.
psql runs with ON_ERROR_STOP; a single-database restore runs in one transaction, or with `jobs` > 1 over that
many connections (stashplan.transfer.pg_parallel_restore; not atomic, like `pg_restore -j`). The stream runs restricted
(`providers.databases.confine.PsqlConfine`): no meta-command runs (`\!`, `\o`, `\copy`...), and `\connect`
only in a restore into the whole server (an AppBinding naming a database refuses it). A restore into a named
database refuses statements reaching beyond it (`pg_confine`: COPY PROGRAM, ALTER DATABASE other, roles, dblink...)
and, when the AppBinding's user is a superuser, runs as a role of its own limited to that database (`pg_role`).
TLS: caBundle (else the tlsSecret's ca.crt) is PGSSLROOTCERT, the tlsSecret's client certificate and key
are PGSSLCERT/PGSSLKEY; with a client certificate and no sslmode in the URL, PGSSLMODE is verify-full.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
from providers.databases.confine import Chain, PsqlConfine
from providers.databases.grammars import PG_DUMP, PG_DUMPALL, PSQL
from providers.databases.options import (
    COMMANDS,
    ERRORS,
    FILES,
    FORMAT,
    OTHER,
    OUTPUT,
    TARGET,
    ToolOptions,
    check_backup_cmd,
    refuse,
    tool_options,
)
from providers.databases.pg_confine import PgTargetConfine
from providers.databases.pg_role import RestoreRole
from providers.databases.pg_versions import NewerSettingsFilter, version_mismatch

SUPERUSERS = ("postgres",)

_CONNECTION = refuse(TARGET, "--host", "--port", "--username", "--dbname", "--password")
_OTHER = refuse(OTHER, "--help", "--version")
_COMMON_DUMP = (
    "--data-only", "--schema-only", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--no-comments",
    "--no-publications", "--no-subscriptions", "--no-tablespaces", "--no-security-labels",
    "--no-unlogged-table-data", "--no-sync", "--inserts", "--column-inserts", "--on-conflict-do-nothing",
    "--quote-all-identifiers", "--disable-triggers", "--disable-dollar-quoting", "--load-via-partition-root",
    "--use-set-session-authorization", "--verbose", "--no-password", "--encoding", "--lock-wait-timeout",
    "--rows-per-insert", "--extra-float-digits",
)
_DUMP_REFUSED = {**_CONNECTION, **_OTHER, **refuse(OUTPUT, "--file")}
OPTIONS = {
    "pg_dump": tool_options(PG_DUMP, (*_COMMON_DUMP, "--create", "--blobs", "--no-blobs", "--enable-row-security",
                                      "--serializable-deferrable", "--strict-names", "--no-synchronized-snapshots",
                                      "--schema", "--exclude-schema", "--table", "--exclude-table",
                                      "--exclude-table-data", "--extension", "--section", "--snapshot"),
                            {**_DUMP_REFUSED, **refuse(TARGET, "--include-foreign-data", "--role"),
                             **refuse(FORMAT, "--format", "--compress", "--jobs")}),
    "pg_dumpall": tool_options(PG_DUMPALL, (*_COMMON_DUMP, "--globals-only", "--roles-only", "--tablespaces-only",
                                            "--no-role-passwords", "--exclude-database"),
                               {**_DUMP_REFUSED, **refuse(TARGET, "--database", "--role")}),
    "psql": tool_options(PSQL, ("--echo-errors", "--echo-queries", "--echo-all", "--quiet"),
                         {**_CONNECTION, **_OTHER, **refuse(OTHER, "-?"), **refuse(TARGET, "--list"), **refuse(COMMANDS, "--command"),
                          **refuse(FILES, "--file"), **refuse(OUTPUT, "--output", "--log-file"),
                          **refuse(ERRORS, "--set")}),
}
BACKUP_TOOLS: tuple[str, ...] = ("pg_dumpall", "pg_dump")


_CREATE_ROLE = re.compile(rb'^CREATE ROLE ("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*);\r?\n?$')


def _idempotent_create_role(line: bytes) -> bytes:
    """`CREATE ROLE x;` -> a block that leaves an existing role alone (its `ALTER ROLE` still applies)."""
    m = _CREATE_ROLE.match(line)
    if not m:
        return line
    return (b"DO $stashplan$ BEGIN CREATE ROLE " + m.group(1)
            + b"; EXCEPTION WHEN duplicate_object THEN NULL; END $stashplan$;\n")


_ROLE_LINES = (b"CREATE ROLE ", b"ALTER ROLE ")  # the starts of the lines SuperuserLineFilter changes
_PAST_ROLES = (b"COPY ", b"\\connect ")  # lines that come after pg_dumpall's roles


class SuperuserLineFilter:
    """Drops `CREATE ROLE <su>;` and `ALTER ROLE <su> WITH ...` lines from a SQL byte stream, and makes
    every other `CREATE ROLE` tolerate a role that already exists (pg_dumpall into a live server)."""

    def __init__(self, roles: tuple[str, ...]) -> None:
        names = "|".join(re.escape(r) for r in sorted(set(roles)) if r)
        self._drop = re.compile(
            rb'^(CREATE ROLE "?(' + names.encode() + rb')"?;|ALTER ROLE "?(' + names.encode() + rb')"? WITH )'
        )
        self._held = b""
        self._mid_line = False  # the next byte continues a line that is no role line
        self._past_roles = False  # a COPY or \connect line has passed: no role line follows

    def feed(self, data: bytes) -> bytes:
        """A chunk with no role line passes as it is; only a last line begun that may be one is held. From the
        first `COPY` or `\\connect` line on, everything passes: role lines come before them (pg_dumpall's
        globals), and a row of COPY data that reads like one is data."""
        if self._past_roles:
            return data
        data, self._held = self._held + data, b""
        start = 0
        if self._mid_line:  # the rest of an ordinary line
            start = data.find(b"\n") + 1
            if not start:
                return data
        cut = max(start, data.rfind(b"\n") + 1)  # whole lines end here
        if (stop := _first_line_starting(data, start, cut, _PAST_ROLES)) >= 0:
            self._past_roles = True
            return self._lines(data, start, stop) + data[stop:]
        end = len(data)
        if cut < end and any(p.startswith(data[cut:cut + len(p)]) for p in (*_ROLE_LINES, *_PAST_ROLES)):
            self._held, end = data[cut:], cut  # may be a role line (or the end of them): judged when whole
        self._mid_line = end > cut
        return self._lines(data, start, cut) + data[cut:end]

    def _lines(self, data: bytes, start: int, stop: int) -> bytes:
        """data[:stop] with the whole lines from `start` filtered."""
        if data.find(b"ROLE", start, stop) < 0:
            return data[:stop]
        lines = data[start:stop].splitlines(keepends=True)
        return data[:start] + b"".join(_idempotent_create_role(line) for line in lines if not self._drop.match(line))

    def flush(self) -> bytes:
        rest, self._held = self._held, b""
        return b"" if self._drop.match(rest) else _idempotent_create_role(rest)


def _first_line_starting(data: bytes, start: int, stop: int, prefixes: tuple[bytes, ...]) -> int:
    """The first line start in data[start:stop] (`start` being one) that begins with one of `prefixes`, or -1."""
    found = [start] if data.startswith(prefixes, start) else []
    for p in prefixes:
        at = data.find(b"\n" + p, start, stop + len(p))
        if at >= 0:
            found.append(at + 1)
    return min((at for at in found if at < stop), default=-1)


class PostgresProvider:
    name = "postgres"
    app_kind = "Postgres"
    filename = "dumpfile.sql"
    empty_dump_ok = False  # pg_dump and pg_dumpall always write a header
    backup_tools = BACKUP_TOOLS
    restore_tool = "psql"
    options: dict[str, ToolOptions] = OPTIONS

    def dump_tool(self, conn_database: str, params: TaskParams) -> str:
        cmd = check_backup_cmd(params.backup_cmd, BACKUP_TOOLS) or "pg_dumpall"
        return "pg_dump" if conn_database else cmd  # a database named in the AppBinding is dumped alone

    def connection(
        self, appbinding: dict, secret: Mapping[str, str], workdir: Path, tls: ClientTLS | None = None
    ) -> Connection:
        return resolve_connection(
            appbinding,
            secret,
            workdir,
            default_port=5432,
            user_keys=("username", "POSTGRES_USER"),
            password_keys=("password", "POSTGRES_PASSWORD"),
            default_user="postgres",
            tls=tls,
        )

    def client_env(self, conn: Connection) -> dict[str, str]:
        """The environment every PostgreSQL client gets (the password, TLS), for tools the provider does not
        run itself (pg_basebackup in a base backup)."""
        return self._env(conn)

    def _env(self, conn: Connection) -> dict[str, str]:
        env = {"PGCONNECT_TIMEOUT": "10"}
        if conn.password:
            env["PGPASSWORD"] = conn.password
        if conn.query.get("sslmode"):
            env["PGSSLMODE"] = conn.query["sslmode"]
        elif conn.cert_file:
            env["PGSSLMODE"] = "verify-full"
        if conn.ca_file:
            env["PGSSLROOTCERT"] = str(conn.ca_file)
        if conn.cert_file and conn.key_file:
            env["PGSSLCERT"] = str(conn.cert_file)
            env["PGSSLKEY"] = str(conn.key_file)
        return env

    def _target(self, conn: Connection) -> list[str]:
        args = [f"--host={conn.host}", f"--username={conn.username}"]
        if conn.port:
            args.insert(1, f"--port={conn.port}")
        return args

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        argv = ["pg_isready", *self._target(conn), "--timeout=5"]
        if conn.database:
            argv.append(f"--dbname={conn.database}")
        return Probe(ProcessSpec(tuple(argv), self._env(conn)))

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec:
        cmd = self.dump_tool(conn.database, params)
        OPTIONS[cmd].check(params.args)
        argv = [cmd, *self._target(conn), *params.args]
        if cmd == "pg_dump":
            argv.append(f"--dbname={conn.database or 'postgres'}")
        return ProcessSpec(tuple(argv), self._env(conn), explain=version_mismatch)

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        OPTIONS["psql"].check(params.args)
        argv = ["psql", *self._target(conn), "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1"]
        argv += ["--output=/dev/null", *params.args]
        if conn.database:
            argv += ["--single-transaction", f"--dbname={conn.database}"]
        else:
            argv.append("--dbname=postgres")
        roles = (*SUPERUSERS, conn.username)
        if not conn.database:  # the whole server: pg_dumpall's many databases stay on one client
            return RestoreSpec(ProcessSpec(tuple(argv), self._env(conn)),
                               lambda: Chain(SuperuserLineFilter(roles), NewerSettingsFilter(), PsqlConfine("")))
        role = self._role(conn)
        if role is not None:  # the client logs in as the role when `start` creates it (PGUSER, PGPASSWORD)
            argv = [a for a in argv if not a.startswith("--username=")]
        target = conn.database
        parallel = self.parallel_clients(conn, params, role) if params.jobs > 1 else None
        return RestoreSpec(ProcessSpec(tuple(argv), role.env if role else self._env(conn)),
                           lambda: Chain(SuperuserLineFilter(roles), NewerSettingsFilter(), _confine(target, role),
                                         PsqlConfine(target)),
                           parallel=parallel, start=role.start if role else None,
                           finish=role.finish if role else None)

    def _role(self, conn: Connection) -> RestoreRole | None:
        """The restore's own role (created only if the AppBinding's user is a superuser); none with a client
        certificate, which authenticates the AppBinding's user alone."""
        if conn.cert_file:
            return None
        admin = [a for a in self._target(conn) if not a.startswith("--username=")]
        return RestoreRole(admin, self._env(conn), conn.username, conn.database)

    def parallel_clients(self, conn: Connection, params: TaskParams,
                         role: RestoreRole | None = None) -> ParallelClients:
        """`params.jobs` psql clients of `conn.database` (as `role` once it has started); their output carries the
        runner's progress markers."""
        OPTIONS["psql"].check(params.args)
        target_args = [a for a in self._target(conn) if role is None or not a.startswith("--username=")]
        worker = ["psql", *target_args, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
                  "--no-align", "--tuples-only", *params.args, f"--dbname={conn.database}"]
        target = conn.database

        def check_meta(line: bytes) -> None:  # the serial restore's rules: PsqlConfine refuses what it refuses
            PsqlConfine(target).feed(line)

        return ParallelClients(ProcessSpec(tuple(worker), role.env if role else self._env(conn)), max(1, params.jobs),
                               check_meta, lambda: Chain(NewerSettingsFilter(), _confine(target, role)))


def _confine(target: str, role: RestoreRole | None) -> PgTargetConfine:
    """The statement filter; ownership and privilege statements go to the role's list once it is in use."""
    return PgTargetConfine(target, role.defer if role is not None and role.active else None)
