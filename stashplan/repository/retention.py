"""Retention (`forget`) with restic's semantics: per group, newest first, a snapshot is kept when any rule wants it.

keep_last keeps the n newest; keep_hourly/daily/weekly/monthly/yearly keep the newest snapshot of each
of the last n hours/days/ISO weeks/months/years that have snapshots; keep_tags keeps every snapshot
carrying all tags of any entry ("a,b" means both a and b). An empty policy keeps everything. Groups are
per invoker, host and file name; a policy can be limited to one invoker's snapshots. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stashplan.repository.snapshots import InvokerRef, Snapshot


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_tags: tuple[str, ...] = ()

    def empty(self) -> bool:
        counts = (
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        )
        return not any(counts) and not self.keep_tags

    def describe(self) -> str:
        parts = [
            f"{label} {n}"
            for label, n in (
                ("last", self.keep_last),
                ("hourly", self.keep_hourly),
                ("daily", self.keep_daily),
                ("weekly", self.keep_weekly),
                ("monthly", self.keep_monthly),
                ("yearly", self.keep_yearly),
            )
            if n
        ]
        if self.keep_tags:
            parts.append("tags " + " ".join(self.keep_tags))
        return "keep " + ", ".join(parts) if parts else "keep all (empty policy)"


@dataclass(frozen=True)
class ForgetResult:
    keep: list[Snapshot]
    remove: list[Snapshot]
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)  # snapshot id -> why kept


def _week(t: datetime) -> int:
    year, week, _ = t.isocalendar()
    return year * 100 + week


BUCKETS: tuple[tuple[str, Callable[[datetime], int]], ...] = (
    ("hourly", lambda t: t.year * 1000000 + t.month * 10000 + t.day * 100 + t.hour),
    ("daily", lambda t: t.year * 10000 + t.month * 100 + t.day),
    ("weekly", _week),
    ("monthly", lambda t: t.year * 100 + t.month),
    ("yearly", lambda t: t.year),
)


def _has_taglist(snap: Snapshot, taglist: str) -> bool:
    wanted = [t for t in taglist.split(",") if t]
    if not wanted:
        return not snap.tags
    return all(t in snap.tags for t in wanted)


def apply_group(snapshots: Sequence[Snapshot], policy: RetentionPolicy) -> ForgetResult:
    """Apply `policy` to one group of snapshots (times compared in their own zone, as restic does)."""
    ordered = sorted(snapshots, key=lambda s: (s.time, s.id), reverse=True)
    if policy.empty():
        return ForgetResult(list(reversed(ordered)), [], {s.id: ("policy is empty",) for s in ordered})
    counts = {
        "last": policy.keep_last,
        "hourly": policy.keep_hourly,
        "daily": policy.keep_daily,
        "weekly": policy.keep_weekly,
        "monthly": policy.keep_monthly,
        "yearly": policy.keep_yearly,
    }
    last_seen: dict[str, int | None] = {name: None for name in counts}
    keep, remove, reasons = [], [], {}
    for snap in ordered:
        why: list[str] = []
        if any(_has_taglist(snap, tl) for tl in policy.keep_tags):
            why.append("tags")
        if counts["last"] > 0:
            counts["last"] -= 1
            why.append("last snapshot")
        for name, bucket in BUCKETS:
            if counts[name] > 0:
                value = bucket(snap.time)
                if value != last_seen[name]:
                    last_seen[name] = value
                    counts[name] -= 1
                    why.append(f"{name} snapshot")
        if why:
            keep.append(snap)
            reasons[snap.id] = tuple(why)
        else:
            remove.append(snap)
    return ForgetResult(list(reversed(keep)), list(reversed(remove)), reasons)


def group_of(snap: Snapshot) -> tuple[str, str, str]:
    """A snapshot's retention group: its invoker, host and file name. Snapshots recording no invoker (older
    ones, copies of restic snapshots) form groups of their own by host and file name, as restic's default
    `--group-by host,paths` and Stash's."""
    return (str(snap.invoker or ""), snap.hostname, snap.filename)


def apply_policy(
    snapshots: Sequence[Snapshot], policy: RetentionPolicy, invoker: InvokerRef | None = None
) -> ForgetResult:
    """Apply `policy` to each group (`group_of`). With `invoker`, only that invoker's snapshots are considered:
    the others are neither kept nor removed (two BackupConfigurations sharing a repository each keep their own)."""
    groups: dict[tuple[str, str, str], list[Snapshot]] = {}
    for snap in snapshots:
        if invoker is None or snap.invoker == invoker:
            groups.setdefault(group_of(snap), []).append(snap)
    keep: list[Snapshot] = []
    remove: list[Snapshot] = []
    reasons: dict[str, tuple[str, ...]] = {}
    for group in groups.values():
        result = apply_group(group, policy)
        keep += result.keep
        remove += result.remove
        reasons.update(result.reasons)
    order = lambda s: (s.time, s.id)  # noqa: E731
    return ForgetResult(sorted(keep, key=order), sorted(remove, key=order), reasons)
