"""Timelines and their history files (pure): which timeline each segment of a timeline's history is read from,
which base backups lie on that history, and what is wrong with the archived history chain.

`0000000N.history` lists every ancestor of timeline N with the LSN where N (or the next one) branched off it.
Recovery along timeline N reads a segment from the newest timeline of that list that had begun by then, as
PostgreSQL's XLogFileReadAnyTLI does; the segment holding a switch point comes from the child timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn, parse_lsn, segment_of


@dataclass(frozen=True)
class Switch:
    """One line of a history file: timeline `parent` ended at `end_lsn` (its child began there)."""

    parent: int
    end_lsn: int


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def parse_history(text: str) -> tuple[Switch, ...]:
    """The lines of a timeline history file, oldest ancestor first; ValueError for a malformed one."""
    found: list[Switch] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            found.append(Switch(int(fields[0]), parse_lsn(fields[1])))
        except (IndexError, ValueError):
            raise ValueError(f"timeline history line {number}: expected 'TLI<tab>X/Y<tab>reason'") from None
    return tuple(found)


@dataclass(frozen=True)
class Chain:
    """Timeline `timeline`'s history: (timeline, LSN where it began) from the first ancestor to itself."""

    timeline: int
    begins: tuple[tuple[int, int], ...]

    def ends(self, tli: int) -> int | None:
        """Where `tli` ends on this history (None: it is the chain's own timeline, or not on it)."""
        for (this, _begin), (_next, begin) in zip(self.begins, self.begins[1:], strict=False):
            if this == tli:
                return begin
        return None

    def owner(self, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
        """The timeline segment `segno` is read from on this history."""
        owner = self.begins[0][0]
        for tli, begin in self.begins:
            if segment_of(begin, segment_size) <= segno:
                owner = tli
        return owner

    def holds(self, backup: BaseBackup) -> bool:
        """True when `backup` lies on this history: its timeline is an ancestor (or this one) and the backup
        stopped before that timeline branched off towards this one."""
        if backup.timeline not in {tli for tli, _ in self.begins}:
            return False
        end = self.ends(backup.timeline)
        return end is None or backup.stop_lsn <= end

    def view(self, segments: Mapping[int, set[int]], segment_size: int = DEFAULT_SEGMENT_SIZE) -> set[int]:
        """The segment numbers available along this history: each one archived on the timeline it is read from."""
        out: set[int] = set()
        bounds = [segment_of(begin, segment_size) for _tli, begin in self.begins] + [None]
        for (tli, _begin), low, high in zip(self.begins, bounds, bounds[1:], strict=False):
            assert low is not None
            out |= {s for s in segments.get(tli, set()) if s >= low and (high is None or s < high)}
        return out

    @property
    def first_own_segment_lsn(self) -> int:
        return self.begins[-1][1]


def chain(timeline: int, histories: Mapping[int, tuple[Switch, ...]]) -> Chain:
    """Timeline `timeline`'s history as its history file gives it (only itself when it has none)."""
    switches = histories.get(timeline, ())
    begins = [(switches[0].parent, 0)] if switches else []
    for i, switch in enumerate(switches):
        child = switches[i + 1].parent if i + 1 < len(switches) else timeline
        begins.append((child, switch.end_lsn))
    return Chain(timeline, tuple(begins) or ((timeline, 0),))


def problems(histories: Mapping[int, tuple[Switch, ...]], used: set[int]) -> list[str]:
    """What breaks the history chain: a timeline after the first with WAL or base backups but no history
    file, an ancestor whose own history file is missing, or a history that contradicts its parent's."""
    found: list[str] = []
    roots = {switches[0].parent for switches in histories.values() if switches}
    first = min(used | set(histories) | roots, default=1)
    for tli in sorted(used | set(histories)):
        if tli == first:
            continue
        if tli not in histories:
            found.append(
                f"timeline {tli}: {history_name(tli)} is not archived; recovery cannot follow it from its parent"
            )
            continue
        switches = histories[tli]
        for depth, switch in enumerate(switches):
            if depth == 0:
                continue  # the history's first ancestor is where the cluster began: it has no history file
            if switch.parent not in histories:
                found.append(
                    f"timeline {tli}: its ancestor {switch.parent}'s {history_name(switch.parent)} is missing"
                )
            elif histories[switch.parent] != switches[:depth]:
                found.append(
                    f"timeline {tli}: {history_name(tli)} disagrees with {history_name(switch.parent)} about "
                    f"timeline {switch.parent}'s ancestors"
                )
    return found


def describe_chain(c: Chain) -> str:
    """`1 -> 2 at 0/3000060 -> 3 at 0/5000000`."""
    parts = [str(c.begins[0][0])] + [f"{tli} at {format_lsn(begin)}" for tli, begin in c.begins[1:]]
    return " -> ".join(parts)
