"""Redis: a consistent snapshot as a RESTORE command stream; restore replays it with `redis-cli --pipe`.

Dump: `providers.databases.redis_stream` fetches an RDB (`redis-cli --rdb`, a point-in-time fork on the
server), loads it into a private redis-server and writes `RESTORE key pttl payload REPLACE` commands.
A database number in the URL path (`redis://host:6379/3`) dumps only that database, and a restore
replays into the target's database number (`redis-cli -n`); with no number every database is dumped
with `SELECT` commands. The restore stream may carry only those RESTORE and SELECT commands
(`providers.databases.redis_confine`); into a numbered database, the dump's one database is rewritten to it
and a second one is refused. Restore works against a running server and replaces keys of the same name;
other keys stay. The password travels in REDISCLI_AUTH only. The server sends the RDB after its
`repl-diskless-sync-delay` (5 s by default), which adds that much to every dump.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
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
from providers.databases.grammars import REDIS_CLI
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
from providers.databases.redis_confine import RedisConfine
from stashplan.errors import TransferError

_REDIS_REFUSED = {**refuse(TARGET, "-h", "-p", "-s", "-a", "--user", "--pass", "--askpass", "-u", "-n", "-c",
                          "--cluster"),
                  **refuse(OUTPUT, "--rdb", "--functions-rdb", "--pipe", "-e", "--replica", "--slave"),
                  **refuse(COMMANDS, "--eval", "-x", "-X", "-r", "-i", "--ldb", "--ldb-sync-mode"),
                  **refuse(FILES, "--cacert", "--cacertdir", "--cert", "--key"),
                  **refuse(OTHER, "--help", "--version", "-v", "--stat", "--latency", "--latency-history",
                           "--latency-dist", "--lru-test", "--bigkeys", "--memkeys", "--hotkeys", "--scan",
                           "--intrinsic-latency")}
OPTIONS = {"redis-cli": tool_options(REDIS_CLI, ("--tls", "--insecure", "--no-auth-warning", "--sni", "--pipe-timeout"),
                                     _REDIS_REFUSED)}
BACKUP_TOOLS: tuple[str, ...] = ("redis-cli",)


class RedisProvider:
    name = "redis"
    app_kind = "Redis"
    filename = "dump.resp"
    empty_dump_ok = True  # an empty server has no keys to write
    backup_tools = BACKUP_TOOLS
    restore_tool = "redis-cli"
    options: dict[str, ToolOptions] = OPTIONS

    def dump_tool(self, conn_database: str, params: TaskParams) -> str:
        return check_backup_cmd(params.backup_cmd, BACKUP_TOOLS) or "redis-cli"

    def connection(
        self, appbinding: dict, secret: Mapping[str, str], workdir: Path, tls: ClientTLS | None = None
    ) -> Connection:
        if tls is not None:
            raise TransferError(f"{appbinding_name(appbinding)}: spec.tlsSecret is not supported for redis")
        conn = resolve_connection(appbinding, secret, workdir, default_port=6379)
        if conn.database and not conn.database.isdigit():
            raise TransferError(
                f"{appbinding_name(appbinding)}: redis database must be a number, not {conn.database!r}"
            )
        return conn

    def _env(self, conn: Connection) -> dict[str, str]:
        return {"REDISCLI_AUTH": conn.password} if conn.password else {}

    def _target(self, conn: Connection) -> list[str]:
        args = ["-h", conn.host, "-p", str(conn.port or 6379), "--no-auth-warning"]
        if conn.username:
            args += ["--user", conn.username]
        if conn.scheme == "rediss" or conn.ca_file:
            args.append("--tls")
        if conn.ca_file:
            args += ["--cacert", str(conn.ca_file)]
        return args

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        argv = ("redis-cli", *self._target(conn), "PING")
        return Probe(
            ProcessSpec(argv, self._env(conn)), expect="PONG", fatal=("WRONGPASS", "NOAUTH", "invalid")
        )

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec:
        OPTIONS[self.dump_tool("", params)].check(params.args)
        argv = (
            sys.executable,
            "-m",
            "providers.databases.redis_stream",
            f"--db={conn.database or 'all'}",
            "--",
            *self._target(conn),
            *params.args,
        )
        return ProcessSpec(argv, self._env(conn), label="redis dump")

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec:
        OPTIONS["redis-cli"].check(params.args)
        argv = ["redis-cli", *self._target(conn), *params.args]
        if conn.database:
            argv += ["-n", conn.database]
        target = conn.database
        return RestoreSpec(ProcessSpec((*argv, "--pipe"), self._env(conn)), lambda: RedisConfine(target))
