"""What a repository holds for point-in-time recovery: its base backups (snapshots tagged `pg-basebackup` with
a recorded stop), the archived WAL, and from both the recoverable windows (with the time each one ends,
read from its last segment's header), the gaps and what breaks the timeline history chain. One listing of
`snapshots/` and one of `wal/`, then the few timeline history files read.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime

from stashplan.errors import StashplanError
from stashplan.pitr.labels import BASEBACKUP_TAG, BaseBackup, from_tags
from stashplan.pitr.timelines import Switch, parse_history, problems
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, WalKind, parse_lsn, parse_wal_name, segment_name
from stashplan.pitr.walstore import Archived, archived, header_of, last_written, read
from stashplan.pitr.window import Gap, Window, gaps, windows
from stashplan.repository.repo import Repository


@dataclass(frozen=True)
class Inventory:
    backups: tuple[BaseBackup, ...]  # oldest first
    incomplete: tuple[str, ...]  # ids of `pg-basebackup` snapshots without a recorded stop
    archive: Archived
    windows: tuple[Window, ...]
    gaps: tuple[Gap, ...]
    histories: dict[int, tuple[Switch, ...]]  # per timeline, from its archived history file
    chain_problems: tuple[str, ...]  # missing or contradicting history files


def read_histories(repo: Repository, archive: Archived) -> tuple[dict[int, tuple[Switch, ...]], list[str]]:
    """Every archived timeline history file, parsed; a damaged or malformed one is a problem, not an error."""
    found: dict[int, tuple[Switch, ...]] = {}
    bad: list[str] = []
    for name in archive.others:
        wal = parse_wal_name(name)
        if wal.kind is not WalKind.HISTORY:
            continue
        try:
            found[wal.timeline] = parse_history(read(repo, name).decode("utf-8", "replace"))
        except (StashplanError, ValueError) as exc:
            bad.append(f"timeline {wal.timeline}: {name} cannot be read: {exc}")
    return found, bad


def _ended(repo: Repository, archive: Archived, window: Window, segment_size: int) -> Window:
    """`window` with the time its last segment was last written; when that segment is held only as a
    `.partial`, its end is the LSN the partial is known to reach (wal-receive records it), if recorded."""
    segment = segment_name(window.timeline, window.last_segment, segment_size)
    if archive.partial_tails.get(window.timeline) != window.last_segment:
        return replace(window, end_time=last_written(repo, segment))
    header = header_of(repo, segment + ".partial") or {}
    end = window.end_lsn
    with contextlib.suppress(KeyError, ValueError):
        end = max(window.start_lsn, min(end, parse_lsn(str(header["received_to"]))))
    with contextlib.suppress(KeyError, ValueError):
        return replace(window, end_lsn=end, end_time=datetime.fromisoformat(str(header["last_written"])))
    return replace(window, end_lsn=end, end_time=None)


def take_inventory(repo: Repository, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Inventory:
    backups: list[BaseBackup] = []
    incomplete: list[str] = []
    for snap in repo.snapshots(tags=[BASEBACKUP_TAG]):
        found = from_tags(snap.id, snap.tags, snap.end_time)
        if found is None:
            incomplete.append(snap.id)
        else:
            backups.append(found)
    archive = archived(repo, segment_size)
    histories, unreadable = read_histories(repo, archive)
    found_windows = [
        _ended(repo, archive, w, segment_size)
        for w in windows(backups, archive.segments, segment_size, histories)
    ]
    used = set(archive.segments) | {b.timeline for b in backups}
    return Inventory(
        tuple(backups),
        tuple(incomplete),
        archive,
        tuple(found_windows),
        tuple(gaps(backups, archive.segments, segment_size, histories)),
        histories,
        tuple(unreadable + problems(histories, used)),
    )
