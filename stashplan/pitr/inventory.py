"""What a repository holds for point-in-time recovery: its base backups (snapshots tagged `pg-basebackup` with
a recorded stop), the archived WAL, and from both the recoverable windows (with the time each one ends,
read from its last segment's header) and the gaps. One listing of `snapshots/` and one of `wal/`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stashplan.pitr.labels import BASEBACKUP_TAG, BaseBackup, from_tags
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, segment_name
from stashplan.pitr.walstore import Archived, archived, last_written
from stashplan.pitr.window import Gap, Window, gaps, windows
from stashplan.repository.repo import Repository


@dataclass(frozen=True)
class Inventory:
    backups: tuple[BaseBackup, ...]  # oldest first
    incomplete: tuple[str, ...]  # ids of `pg-basebackup` snapshots without a recorded stop
    archive: Archived
    windows: tuple[Window, ...]
    gaps: tuple[Gap, ...]


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
    found_windows = [
        replace(w, end_time=last_written(repo, segment_name(w.timeline, w.last_segment, segment_size)))
        for w in windows(backups, archive.segments, segment_size)
    ]
    return Inventory(
        tuple(backups),
        tuple(incomplete),
        archive,
        tuple(found_windows),
        tuple(gaps(backups, archive.segments, segment_size)),
    )
