"""Which archived WAL the kept base backups still need (pure): per timeline, the first segment a kept base backup
on its history may replay; every segment, `.backup` and `.partial` file below it can go. History files stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.timelines import Switch, chain
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, WalKind, parse_wal_name, segment_number, segment_of


def horizons(
    kept: Iterable[BaseBackup],
    timelines: Iterable[int],
    histories: Mapping[int, tuple[Switch, ...]],
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> dict[int, int]:
    """Per timeline, the first segment to keep: the oldest start among the kept base backups on its history
    (its own, or an ancestor's taken before the branch); for a timeline none of them lies on, the oldest start
    of all. Empty when no base backup is kept: then nothing may be deleted."""
    kept = list(kept)
    if not kept:
        return {}
    oldest = min(segment_of(b.start_lsn, segment_size) for b in kept)
    out = {}
    for timeline in timelines:
        line = chain(timeline, histories)
        starts = [segment_of(b.start_lsn, segment_size) for b in kept if line.holds(b)]
        out[timeline] = min(starts, default=oldest)
    return out


def droppable(
    names: Iterable[str], first_kept: Mapping[int, int], segment_size: int = DEFAULT_SEGMENT_SIZE
) -> list[str]:
    """The WAL file names below their timeline's first kept segment, oldest first; never a history file, nor
    anything of a timeline `first_kept` does not name."""
    out = []
    for name in names:
        wal = parse_wal_name(name)
        if wal.kind is WalKind.HISTORY or wal.timeline not in first_kept:
            continue
        if segment_number(wal.segment, segment_size) < first_kept[wal.timeline]:
            out.append(name)
    return sorted(out, key=lambda n: (n[8:24], n[:8], n))
