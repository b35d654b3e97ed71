"""`stashplan pg forget`: retention for point-in-time recovery. Base backups are forgotten by a restic-style
policy (per host), then every archived WAL file no kept base backup can replay is deleted (walkeep.py), under
the repository's exclusive lock, so no base backup is being taken meanwhile. History files always stay;
with no complete base backup left, no WAL is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from providers.storage import ObjectNotFound
from stashplan.pitr import walstore
from stashplan.pitr.inventory import read_histories
from stashplan.pitr.labels import BASEBACKUP_TAG, BaseBackup, from_tags
from stashplan.pitr.walkeep import droppable, horizons
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, WalKind, parse_wal_name
from stashplan.repository import locks
from stashplan.repository.layout import SNAPSHOTS
from stashplan.repository.repo import Repository
from stashplan.repository.retention import RetentionPolicy, apply_policy
from stashplan.repository.snapshots import Snapshot


@dataclass(frozen=True)
class Forgotten:
    kept: tuple[BaseBackup, ...]
    removed: tuple[BaseBackup, ...]  # base backups forgotten
    wal: tuple[str, ...]  # WAL files deleted (or that would be, with dry_run)


def forget(
    repo: Repository,
    policy: RetentionPolicy,
    *,
    dry_run: bool = False,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> Forgotten:
    """Apply `policy` to the complete base backups (an empty policy keeps them all), then delete the WAL none
    of the kept ones needs; with `dry_run`, only say what would go."""
    lock = locks.Lock(repo.storage, exclusive=True, operation="pg forget")
    with locks.released_on_sigterm():
        lock.acquire(repo.lock_wait)
        try:
            snaps = {snap.id: (snap, found) for snap, found in _complete(repo)}
            result = apply_policy([s for s, _ in snaps.values()], policy)
            removed = tuple(snaps[s.id][1] for s in result.remove)
            kept = tuple(snaps[s.id][1] for s in result.keep)
            wal = _unneeded_wal(repo, kept, segment_size)
            if dry_run:
                return Forgotten(kept, removed, wal)
            lock.verify("nothing forgotten")
            for backup in removed:
                try:
                    repo.storage.delete(SNAPSHOTS + backup.snapshot_id)
                except ObjectNotFound:
                    continue
            lock.verify("base backups forgotten, their WAL not yet deleted")
            for name in wal:
                walstore.delete(repo, name)
            return Forgotten(kept, removed, wal)
        finally:
            lock.release()


def _complete(repo: Repository) -> list[tuple[Snapshot, BaseBackup]]:
    """The base backups with a recorded stop, with their snapshots."""
    return [
        (snap, found)
        for snap in repo.snapshots(tags=[BASEBACKUP_TAG])
        if (found := from_tags(snap.id, snap.tags, snap.end_time)) is not None
    ]


def _unneeded_wal(
    repo: Repository, kept: tuple[BaseBackup, ...], segment_size: int, names: list[str] | None = None
) -> tuple[str, ...]:
    """The archived WAL none of `kept` needs; `names` is the archive's listing when the caller has it."""
    archive = walstore.archived(repo, segment_size)
    histories, _unreadable = read_histories(repo, archive)
    names = walstore.listed(repo) if names is None else names
    timelines = {parse_wal_name(n).timeline for n in names}
    return tuple(droppable(names, horizons(kept, timelines, histories, segment_size), segment_size))


def segment_size_of(repo: Repository, names: list[str]) -> int | None:
    """The segment size of the archive's segments, from the newest whole segment's header (wal-push records
    each file's size); None when there is none or it cannot be read."""
    segments = sorted((n for n in names if parse_wal_name(n).kind is WalKind.SEGMENT), key=lambda n: n[8:])
    header = walstore.header_of(repo, segments[-1]) if segments else None
    size = (header or {}).get("size")
    return size if isinstance(size, int) and size > 0 and size & (size - 1) == 0 else None


def forget_wal(repo: Repository) -> tuple[str, ...]:
    """After retention forgot base backups (a BackupConfiguration's `retentionPolicy`): delete the archived WAL
    no complete base backup left in the repository needs, under the exclusive lock; the names deleted. Nothing
    is deleted when no base backup is left or the segment size cannot be read from the archive."""
    lock = locks.Lock(repo.storage, exclusive=True, operation="pg forget (WAL)")
    with locks.released_on_sigterm():
        lock.acquire(repo.lock_wait)
        try:
            names = walstore.listed(repo)
            segment_size = segment_size_of(repo, names)
            if segment_size is None:
                return ()
            kept = tuple(found for _snap, found in _complete(repo))
            wal = _unneeded_wal(repo, kept, segment_size, names)
            lock.verify("no WAL deleted")
            for name in wal:
                walstore.delete(repo, name)
            return wal
        finally:
            lock.release()
