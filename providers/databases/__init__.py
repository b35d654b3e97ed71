"""Database providers: one module per engine behind the `DatabaseProvider` protocol; `get_provider(name)`."""

from __future__ import annotations

from collections.abc import Mapping

from providers.databases.base import (
    ClientTLS,
    Connection,
    DatabaseProvider,
    Probe,
    ProcessSpec,
    RestoreSpec,
    StreamFilter,
    TaskParams,
    wait_ready,
)
from providers.databases.mysql import MySQLProvider
from providers.databases.postgres import PostgresProvider
from providers.databases.redis import RedisProvider
from providers.databases.sqlite import SQLiteProvider

NAMES = ("postgres", "mysql", "mariadb", "redis", "sqlite")

__all__ = [
    "NAMES",
    "ClientTLS",
    "Connection",
    "DatabaseProvider",
    "Probe",
    "ProcessSpec",
    "RestoreSpec",
    "StreamFilter",
    "TaskParams",
    "check_task_params",
    "get_provider",
    "wait_ready",
]


def get_provider(name: str) -> DatabaseProvider:
    """The provider for `postgres`, `mysql`, `mariadb`, `redis` or `sqlite` (also `postgresql`, `sqlite3`)."""
    key = {"postgresql": "postgres", "pg": "postgres", "sqlite3": "sqlite"}.get(name.lower(), name.lower())
    if key == "postgres":
        return PostgresProvider()
    if key in ("mysql", "mariadb"):
        return MySQLProvider(key)
    if key == "redis":
        return RedisProvider()
    if key == "sqlite":
        return SQLiteProvider()
    raise ValueError(f"unknown database {name!r}; known: {', '.join(NAMES)}")


def check_task_params(direction: str, database: str, params: Mapping[str, str]) -> list[str]:
    """Refuse (TransferError naming the param and the option) task params the provider does not allow:
    `backupCMD` other than its tool names, and `args`/`multiDumpArgs` options not on the tool's allow-list, or
    (MySQL/MariaDB) only Oracle MySQL's client knows when MariaDB's will run. Returns notes for the plan: the
    options translated for the client that will run. `direction` is "backup" or "restore"; `params` maps
    Stash's param names to their values."""
    provider = get_provider(database)
    parsed = TaskParams.parse(params.get("backupCMD", ""), params.get("args", ""), params.get("multiDumpArgs", ""))
    notes: list[str] = []
    if isinstance(provider, MySQLProvider):
        parsed, notes = provider.for_client(direction, parsed)
    if direction == "backup":
        tool = provider.dump_tool("", parsed)
        provider.options[tool].check(parsed.args)
        for i, part in enumerate(parsed.multi_dump_args):
            provider.options[tool].check(part, f"multiDumpArgs (part {i + 1})")
    else:
        provider.options[provider.restore_tool].check(parsed.args)
    return notes
