"""Continuity you can see (pure): from a repository's PITR inventory, the Repository's `status.pitr` (first and
last recoverable time, gaps), its `WALContinuous` condition naming the first gap, and the Pushgateway metrics
`stashplan_pg_recoverable_window_seconds`, `..._last_recoverable_timestamp_seconds` and `stashplan_pg_wal_gaps`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge

from stashplan.objects import rfc3339
from stashplan.pitr.inventory import Inventory
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn

CONDITION = "WALContinuous"
WINDOW = "stashplan_pg_recoverable_window_seconds"
FIRST = "stashplan_pg_first_recoverable_timestamp_seconds"
LAST = "stashplan_pg_last_recoverable_timestamp_seconds"
GAPS = "stashplan_pg_wal_gaps"
VERIFIED = "stashplan_pg_wal_verified_timestamp_seconds"
CAUGHT_UP = "stashplan_pg_wal_receiver_caught_up_timestamp_seconds"
REFRESHED = "stashplan_pg_wal_receiver_refresh_timestamp_seconds"
REFRESH_EVERY = "stashplan_pg_wal_receiver_refresh_interval_seconds"


@dataclass(frozen=True)
class Continuity:
    """What a check of the archive found at `verified`: the recoverable range (None when nothing is
    recoverable), on the newest timeline that has a window, and every gap described."""

    verified: datetime
    first: datetime | None
    last: datetime | None
    timeline: int | None
    end_lsn: int | None
    gaps: tuple[str, ...]
    problems: tuple[str, ...]  # timeline history files missing or contradicting

    @property
    def window_seconds(self) -> float:
        return 0.0 if self.first is None or self.last is None else max(0.0, (self.last - self.first).total_seconds())


def of_inventory(inv: Inventory, verified: datetime, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Continuity:
    """The continuity of `inv`: first recoverable time over every window, the last one from the window that
    reaches furthest on the newest timeline (its last segment's write time, not before the window's start)."""
    gaps = tuple(g.describe(segment_size) for g in inv.gaps)
    if not inv.windows:
        return Continuity(verified, None, None, None, None, gaps, inv.chain_problems)
    newest = max(inv.windows, key=lambda w: (w.timeline, w.end_lsn))
    first = min(w.start_time for w in inv.windows)
    # A window's end is its last segment's write time, which can precede the time its base backup recorded as
    # its stop (the snapshot's end, after the upload): the backup's own point is reachable all the same.
    last = max(newest.end_time or newest.start_time, newest.start_time)
    return Continuity(verified, first, last, newest.timeline, newest.end_lsn, gaps, inv.chain_problems)


def status(c: Continuity) -> dict[str, object]:
    """The Repository's `status.pitr`."""
    out: dict[str, object] = {"gaps": len(c.gaps), "verifiedTime": rfc3339(c.verified)}
    if c.first is not None and c.last is not None:
        out |= {
            "firstRecoverableTime": rfc3339(c.first),
            "lastRecoverableTime": rfc3339(c.last),
            "timeline": c.timeline,
            "windowSeconds": int(c.window_seconds),
        }
    if c.gaps:
        out["firstGap"] = c.gaps[0]
    return out


def condition(c: Continuity) -> tuple[bool, str, str]:
    """(ok, reason, message) of the `WALContinuous` condition: False with the first gap, a broken history, or
    nothing recoverable; True with the window otherwise."""
    more = f" ({len(c.gaps)} gaps; `stashplan pg wal-verify` lists them)" if len(c.gaps) > 1 else ""
    if c.gaps:
        return False, "WALGapFound", f"the WAL archive has a gap: {c.gaps[0]}{more}"
    if c.problems:
        return False, "TimelineHistoryBroken", f"timeline history: {c.problems[0]}"
    if c.first is None or c.last is None:
        return False, "NothingRecoverable", "no base backup with all the WAL it needs is in the repository"
    return True, "WALContinuous", (
        f"recoverable from {rfc3339(c.first)} to {rfc3339(c.last)} on timeline {c.timeline}"
        f" (up to {format_lsn(c.end_lsn or 0)})"
    )


def registry(
    labels: Mapping[str, str], c: Continuity, reg: CollectorRegistry | None = None, caught_up: float | None = None
) -> CollectorRegistry:
    """The continuity gauges, labelled as the repository metrics (`labels`), in `reg` or a new registry. With
    nothing recoverable the timestamps are 0, so that an alert on a stale last recoverable time fires. A WAL
    receiver adds `caught_up`: when the archive last held all the server had written (an idle server's last
    recoverable time ages, its archive does not fall behind)."""
    reg = reg if reg is not None else CollectorRegistry()
    if caught_up is not None:
        Gauge(CAUGHT_UP, "Unix time up to which the archive held all the WAL the server had written (its WAL "
              "receiver had caught up)", labelnames=list(labels), registry=reg).labels(**labels).set(caught_up)
    values = (
        (WINDOW, "Seconds between the first and the last recoverable time of the PostgreSQL archive", c.window_seconds),
        (FIRST, "Unix time of the earliest point a PITR restore can reach", _ts(c.first)),
        (LAST, "Unix time of the latest point a PITR restore can reach (last archived WAL)", _ts(c.last)),
        (GAPS, "Runs of WAL segments missing from the archive", float(len(c.gaps))),
        (VERIFIED, "Unix time the archive's continuity was last checked", c.verified.timestamp()),
    )
    for name, doc, value in values:
        Gauge(name, doc, labelnames=list(labels), registry=reg).labels(**labels).set(value)
    return reg


def receiver_heartbeat(labels: Mapping[str, str], refreshed: float, every: float, reg: CollectorRegistry) -> None:
    """Add to `reg` when a WAL receiver last checked the archive and how often it does, labelled with its
    BackupConfiguration (`labels`: namespace, invoker_kind, invoker_name, as the operator's
    stashplan_backupconfiguration_wal_receiver): a receiver that stops, freezes or cannot reach its repository
    stops advancing it, which no value it pushed before can show."""
    for name, doc, value in (
        (REFRESHED, "Unix time the WAL receiver last checked the archive's continuity", refreshed),
        (REFRESH_EVERY, "Seconds between the WAL receiver's checks of the archive", every),
    ):
        Gauge(name, doc, labelnames=list(labels), registry=reg).labels(**labels).set(value)


def _ts(value: datetime | None) -> float:
    return 0.0 if value is None else value.timestamp()
