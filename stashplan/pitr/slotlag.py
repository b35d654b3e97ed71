"""A replication slot's lag: the bytes between the server's current WAL position and what the slot's consumer
has confirmed (`confirmed_flush_lsn`, or `restart_lsn` for a physical slot), read with psql, and the gauges
`stashplan pg wal-receive` pushes to a Pushgateway."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge

from stashplan.errors import StashplanError
from stashplan.pitr.walnames import parse_lsn

LAG_METRIC = "stashplan_pg_wal_receive_slot_lag_bytes"
MEASURED_METRIC = "stashplan_pg_wal_receive_last_measure_timestamp_seconds"
QUERY = (
    "SELECT pg_current_wal_lsn(), coalesce(confirmed_flush_lsn, restart_lsn) "
    "FROM pg_replication_slots WHERE slot_name = '{slot}'"
)


class Server(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def dbname(self) -> str: ...


@dataclass(frozen=True)
class SlotLag:
    current: int  # pg_current_wal_lsn()
    confirmed: int | None  # None: the slot has never been used

    @property
    def bytes(self) -> int:
        """How much WAL the server holds for the slot beyond what its consumer has confirmed."""
        return self.current - (self.confirmed if self.confirmed is not None else self.current)


def query_lag(psql: str, server: Server, slot: str) -> SlotLag:
    """The slot's lag (`slot` is a checked slot name, so it is quoted as is); StashplanError naming the
    cause when psql fails or the slot does not exist."""
    argv = [psql, "-h", server.host, "-p", str(server.port), "-U", server.user, "-d", server.dbname]
    done = subprocess.run(
        [*argv, "-w", "-X", "-At", "-F", " ", "-c", QUERY.format(slot=slot)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode:
        raise StashplanError(f"psql exited with code {done.returncode}: {done.stderr.strip()[-300:]}")
    fields = done.stdout.split()
    if not fields:
        raise StashplanError(f"replication slot {slot!r} does not exist on {server.host}:{server.port}")
    try:
        return SlotLag(parse_lsn(fields[0]), parse_lsn(fields[1]) if len(fields) > 1 else None)
    except ValueError as exc:
        raise StashplanError(f"replication slot {slot!r}: {exc}") from None


def system_identifier(psql: str, server: Server) -> int:
    """The server's system identifier (IDENTIFY_SYSTEM over a replication connection, as the receiver's role
    may make); StashplanError naming the cause."""
    conninfo = f"dbname={server.dbname} replication=database"
    argv = [psql, "-h", server.host, "-p", str(server.port), "-U", server.user, "-d", conninfo]
    done = subprocess.run([*argv, "-w", "-X", "-At", "-c", "IDENTIFY_SYSTEM"], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    if done.returncode:
        raise StashplanError(f"psql IDENTIFY_SYSTEM exited with code {done.returncode}: {done.stderr.strip()[-300:]}")
    try:
        return int(done.stdout.split("|", 1)[0])
    except ValueError:
        raise StashplanError(f"IDENTIFY_SYSTEM answered {done.stdout.strip()[:100]!r}") from None


def lag_registry(host: str, port: int, slot: str, lag: SlotLag, now: float) -> CollectorRegistry:
    """The slot's lag in bytes and when it was measured, labelled with the server and the slot."""
    registry = CollectorRegistry()
    labels = {"host": f"{host}:{port}", "slot": slot}
    for name, doc, value in (
        (
            LAG_METRIC,
            "Bytes of WAL the server keeps for the slot beyond what wal-receive confirmed",
            lag.bytes,
        ),
        (MEASURED_METRIC, "Unix time the slot's lag was last measured", now),
    ):
        Gauge(name, doc, labelnames=list(labels), registry=registry).labels(**labels).set(value)
    return registry
