"""Database providers: one module per engine behind the `DatabaseProvider` protocol; `get_provider(name)`."""

from __future__ import annotations

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
