"""`stashplan status`: one row per BackupConfiguration across namespaces — its schedule, last success and
how late it is against that schedule, next run, last duration, stored size and growth, integrity. Pure:
objects and `now` in, rows out (stashplan/overview_render.py draws them)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from stashplan.objects import parse_time, rfc3339
from stashplan.schedules import allowed_age, longest_gap, next_run
from stashplan.units import parse_go_duration

_SIZE = re.compile(r"^\s*([0-9.]+)\s*(B|KiB|MiB|GiB|TiB)\s*$")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
SPARK = "▁▂▃▄▅▆▇█"
HISTORY = 12  # sizes in a growth sparkline


class Freshness(StrEnum):
    """The last success against the schedule: within its interval, within the alert's margin, beyond it."""

    OK = "ok"  # younger than the schedule's longest gap
    LATE = "late"  # older, but within the margin StashplanBackupOverdue allows
    OVERDUE = "overdue"  # older than the margin: the alert fires
    NEVER = "never"  # no success known
    PAUSED = "paused"


@dataclass(frozen=True)
class Row:
    namespace: str
    name: str
    schedule: str
    paused: bool
    last_phase: str  # phase of the newest session ("" without one)
    last_success: datetime | None
    age: float | None  # seconds since last_success
    interval: float | None  # seconds: the schedule's longest gap
    freshness: Freshness
    next_run: datetime | None
    last_duration: float | None  # seconds the newest successful session took
    repository: str
    stored_bytes: int | None  # the Repository's status.totalSize
    sizes: tuple[int, ...]  # oldest first: snapshot sizes of the sessions (growth)
    integrity: bool | None  # the Repository's status.integrity

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("last_success", "next_run"):
            out[key] = rfc3339(out[key]) if out[key] else None
        out["freshness"] = self.freshness.value
        out["sizes"] = list(self.sizes)
        return out


def parse_size(text: object) -> int | None:
    """"1.234 KiB" (restic's and Stash's status sizes) -> bytes; None if it is not one."""
    m = _SIZE.match(str(text or ""))
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def _end(session: dict) -> datetime | None:
    """When a session finished: its creation plus its sessionDuration."""
    start = parse_time(session["metadata"].get("creationTimestamp"))
    try:
        took = parse_go_duration(str((session.get("status") or {}).get("sessionDuration") or ""))
    except ValueError:
        took = timedelta(0)
    return start + took if start else None


def _snapshot_size(session: dict) -> int | None:
    for target in (session.get("status") or {}).get("targets") or []:
        for host in target.get("stats") or []:
            for snap in host.get("snapshots") or []:
                if (size := parse_size(snap.get("totalSize"))) is not None:
                    return size
    return None


def freshness(age: float | None, interval: float | None, paused: bool) -> Freshness:
    if paused:
        return Freshness.PAUSED
    if age is None:
        return Freshness.NEVER
    limit = interval if interval is not None else 24 * 3600.0  # no valid schedule: the rules' 25 h
    if age <= limit:
        return Freshness.OK
    return Freshness.LATE if age <= allowed_age(limit) else Freshness.OVERDUE


def _row(config: dict, sessions: Sequence[dict], repos: dict[tuple[str, str], dict], shared: set[tuple[str, str]],
         now: datetime) -> Row:
    meta, spec = config["metadata"], config.get("spec") or {}
    ns, schedule, paused = meta.get("namespace", ""), str(spec.get("schedule") or ""), bool(spec.get("paused"))
    ordered = sorted(sessions, key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]))
    succeeded = [s for s in ordered if (s.get("status") or {}).get("phase") == "Succeeded"]
    repo_ref = spec.get("repository") or {}
    repo_key = _repo_key(config)
    repo_status = (repos.get(repo_key) or {}).get("status") or {}
    # Without a successful session left (history beyond backupHistoryLimit is deleted): the Repository's last
    # backup, if no other configuration writes into it.
    last = (_end(succeeded[-1]) if succeeded else
            None if repo_key in shared else parse_time(repo_status.get("lastBackupTime")))
    interval = longest_gap(schedule) if schedule else None
    age = (now - last).total_seconds() if last else None
    took = None
    if succeeded and (end := _end(succeeded[-1])) and (start := parse_time(succeeded[-1]["metadata"].get(
            "creationTimestamp"))):
        took = (end - start).total_seconds()
    sizes = tuple(size for s in succeeded if (size := _snapshot_size(s)) is not None)[-HISTORY:]
    integrity = repo_status.get("integrity")
    return Row(
        ns, meta["name"], schedule, paused,
        str((ordered[-1].get("status") or {}).get("phase") or "Pending") if ordered else "",
        last, age, interval, freshness(age, interval, paused),
        None if paused or not schedule else next_run(schedule, now), took,
        str(repo_ref.get("name") or ""), parse_size(repo_status.get("totalSize")), sizes,
        integrity if isinstance(integrity, bool) else None,
    )


def _repo_key(config: dict) -> tuple[str, str]:
    ref = (config.get("spec") or {}).get("repository") or {}
    return ref.get("namespace") or config["metadata"].get("namespace", ""), ref.get("name", "")


def rows(configs: Iterable[dict], sessions: Iterable[dict], repositories: Iterable[dict], now: datetime) -> list[Row]:
    """One row per BackupConfiguration, sorted by namespace and name."""
    by_config: dict[tuple[str, str], list[dict]] = {}
    for s in sessions:
        invoker = (s.get("spec") or {}).get("invoker") or {}
        by_config.setdefault((s["metadata"].get("namespace", ""), invoker.get("name", "")), []).append(s)
    repos = {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in repositories}
    configs = list(configs)
    users = Counter(_repo_key(c) for c in configs)
    shared = {key for key, n in users.items() if n > 1}
    out = [_row(c, by_config.get((c["metadata"].get("namespace", ""), c["metadata"]["name"]), []), repos, shared,
                now) for c in configs]
    return sorted(out, key=lambda r: (r.namespace, r.name))


def sparkline(sizes: Sequence[int]) -> str:
    """Sizes as bars scaled between their minimum and maximum ("" for fewer than two)."""
    if len(sizes) < 2:
        return ""
    low, high = min(sizes), max(sizes)
    span = high - low
    return "".join(SPARK[0 if not span else round((s - low) / span * (len(SPARK) - 1))] for s in sizes)
