"""The recoverable window (pure): from the base backups and the WAL segments archived per timeline, the LSN
and time ranges a restore can reach, every gap in the archive, and which base backup a target needs.

A base backup is usable when every segment from its start LSN through its stop LSN is archived; from its
stop it can replay forward to the end of the run of contiguous segments that follows. Ranges of backups
in one run merge into one window; a gap splits the windows of a timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.timelines import Switch, chain, describe_chain
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn, segment_name, segment_of


@dataclass(frozen=True)
class Window:
    """Recoverable from `start_lsn` (the earliest usable backup's stop) up to `end_lsn` (exclusive: the end of
    the last contiguous segment). `end_time` is when that segment was last written (None if unknown)."""

    timeline: int
    start_lsn: int
    end_lsn: int
    start_time: datetime
    end_time: datetime | None
    backups: tuple[BaseBackup, ...]  # usable in this window, oldest first
    last_segment: int  # number of the segment that ends the window (on `timeline`)
    history: str = ""  # the timelines it follows, `1 -> 2 at 0/3000060`, when it starts on an ancestor


@dataclass(frozen=True, order=True)
class Gap:
    """Segments missing from the archive: `first` to `last` (segment numbers) on `timeline`."""

    timeline: int
    first: int
    last: int

    def describe(self, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
        first = segment_name(self.timeline, self.first, segment_size)
        if self.first == self.last:
            return f"timeline {self.timeline}: segment {first} is missing"
        last = segment_name(self.timeline, self.last, segment_size)
        return f"timeline {self.timeline}: {self.last - self.first + 1} segments {first}..{last} are missing"


class TargetKind(StrEnum):
    TIME = "time"
    LSN = "lsn"
    NAME = "name"
    LATEST = "latest"


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    time: datetime | None = None
    lsn: int | None = None
    name: str = ""
    timeline: int | None = None  # recover along this timeline; None: the newest one that reaches the target


class OutsideWindow(ValueError):
    """The target cannot be reached from what the repository holds; the message prints the windows."""


def _run_end(segments: set[int], first: int) -> int:
    """The last segment of the contiguous run starting at `first` (first - 1 when `first` is missing)."""
    last = first - 1
    while last + 1 in segments:
        last += 1
    return last


def _timelines(
    backups: Iterable[BaseBackup],
    segments: Mapping[int, set[int]],
    histories: Mapping[int, tuple[Switch, ...]],
) -> list[int]:
    return sorted({b.timeline for b in backups} | set(segments) | set(histories))


def windows(
    backups: Iterable[BaseBackup],
    segments: Mapping[int, set[int]],
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    histories: Mapping[int, tuple[Switch, ...]] | None = None,
) -> list[Window]:
    """The recoverable windows, by timeline then LSN; a base backup whose WAL is incomplete is in none. A
    timeline's window may start from a base backup of an ancestor (its history file says where it branched
    off); it is listed only when its contiguous run reaches the timeline's own segments."""
    backups = list(backups)
    histories = histories or {}
    out = []
    for timeline in _timelines(backups, segments, histories):
        line = chain(timeline, histories)
        view = line.view(segments, segment_size)
        own_from = segment_of(line.first_own_segment_lsn, segment_size) if len(line.begins) > 1 else 0
        runs: dict[int, list[BaseBackup]] = {}
        for backup in sorted(filter(line.holds, backups), key=lambda b: (b.stop_lsn, b.stop_time)):
            last = _run_end(view, segment_of(backup.start_lsn, segment_size))
            if last < segment_of(max(backup.stop_lsn - 1, backup.start_lsn), segment_size) or last < own_from:
                continue  # a segment the backup needs is missing, or the run never reaches this timeline
            runs.setdefault(last, []).append(backup)
        for last, usable in sorted(runs.items()):
            first = usable[0]
            out.append(
                Window(
                    timeline, first.stop_lsn, (last + 1) * segment_size, first.stop_time, None, tuple(usable),
                    last, describe_chain(line) if len(line.begins) > 1 else "",
                )
            )  # fmt: skip
    return out


def gaps(
    backups: Iterable[BaseBackup],
    segments: Mapping[int, set[int]],
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    histories: Mapping[int, tuple[Switch, ...]] | None = None,
) -> list[Gap]:
    """Every run of missing segments, named by the timeline they are read from: along each timeline's history,
    between the oldest segment a base backup on it or the archive starts at and the newest segment archived."""
    backups = list(backups)
    histories = histories or {}
    found: set[Gap] = set()
    for timeline in _timelines(backups, segments, histories):
        line = chain(timeline, histories)
        view = line.view(segments, segment_size)
        starts = [segment_of(b.start_lsn, segment_size) for b in backups if line.holds(b)]
        if not view and not starts:
            continue
        low, high = min([*view, *starts]), max(view, default=-1)
        run: list[int] = []
        for segno in range(low, high + 2):
            missing = segno not in view and segno <= high
            if run and (not missing or line.owner(segno, segment_size) != line.owner(run[0], segment_size)):
                found.add(Gap(line.owner(run[0], segment_size), run[0], run[-1]))
                run = []
            if missing:
                run.append(segno)
    return sorted(found, key=lambda g: (g.timeline, g.first))


def _ts(value: datetime | None) -> str:
    return "unknown time" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def describe(window: Window) -> str:
    return (
        f"timeline {window.timeline}: {format_lsn(window.start_lsn)} ({_ts(window.start_time)}) .. "
        f"{format_lsn(window.end_lsn)} ({_ts(window.end_time)}), {len(window.backups)} base backups"
        + (f", following timelines {window.history}" if window.history else "")
    )


def choose(found: list[Window], target: Target) -> tuple[BaseBackup, Window]:
    """On the newest timeline that reaches `target` (or the one it names), the newest base backup from which
    it is reachable, and its window; OutsideWindow otherwise."""
    candidates: list[tuple[BaseBackup, Window]] = []
    for window in found:
        if target.timeline is not None and window.timeline != target.timeline:
            continue
        for backup in window.backups:
            if target.kind is TargetKind.LSN and target.lsn is not None:
                ok = backup.stop_lsn <= target.lsn < window.end_lsn
            elif target.kind is TargetKind.TIME and target.time is not None:
                ok = backup.stop_time <= target.time and (
                    window.end_time is None or target.time <= window.end_time
                )
            else:
                ok = True
            if ok:
                candidates.append((backup, window))
    if not candidates:
        shown = "; ".join(describe(w) for w in found) or "none (no base backup with all its WAL archived)"
        where = "" if target.timeline is None else f" on timeline {target.timeline}"
        raise OutsideWindow(
            f"target {_target_text(target)}{where} is outside the recoverable window: {shown}"
        )
    return max(candidates, key=lambda c: (c[1].timeline, c[0].stop_lsn, c[0].stop_time))


def _target_text(target: Target) -> str:
    if target.kind is TargetKind.TIME:
        return f"time {_ts(target.time)}"
    if target.kind is TargetKind.LSN and target.lsn is not None:
        return f"LSN {format_lsn(target.lsn)}"
    return target.kind.value if target.kind is TargetKind.LATEST else f"restore point {target.name!r}"
