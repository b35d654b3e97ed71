"""`migrate`: copy restic snapshots (Stash's backups) into a stashplan repository, keeping time, host and tags.

A stashplan snapshot is one stream. A restic snapshot of one file (what `restic backup --stdin` makes)
becomes a snapshot of that file's bytes, named as the file; a snapshot of files and directories (Stash's
volume backups) becomes a snapshot of one pax tar archive of its tree, named `<its paths>.tar`, so that
retention groups it with the other snapshots of the same paths. The `source` is `restic:<snapshot id>`;
snapshots copied before are skipped, so a rerun resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

from stashplan.repository.repo import Repository
from stashplan.repository.restic.repo import ResticRepository
from stashplan.repository.restic.snapshots import ResticSnapshot, select
from stashplan.repository.restic.streaming import ChunksReader, iter_file
from stashplan.repository.restic.tarstream import tar_stream
from stashplan.repository.restic.trees import Node
from stashplan.repository.snapshots import Snapshot

SOURCE_PREFIX = "restic:"


@dataclass(frozen=True)
class Copied:
    restic_id: str
    snapshot: Snapshot  # the new stashplan snapshot
    not_copied: tuple[str, ...] = ()  # nodes a tar archive cannot hold (sockets), named


@dataclass(frozen=True)
class MigrateResult:
    copied: list[Copied]
    skipped: list[str]  # restic snapshot ids copied by an earlier run


def source_of(snap: ResticSnapshot) -> str:
    return f"{SOURCE_PREFIX}{snap.id}"


def tar_name(snap: ResticSnapshot) -> str:
    """The file name of a file snapshot's tar archive: its backed-up paths (one retention group per paths)."""
    return ",".join(snap.paths or ("/",)) + ".tar"


def plan(source: ResticRepository, wanted: Sequence[str]) -> list[tuple[ResticSnapshot, Node | None]]:
    """The snapshots to copy (all, or those named by id/prefix/latest), oldest first, each with its one
    file (a --stdin snapshot) or None (a snapshot of files, copied as a tar archive)."""
    snaps = source.restic_snapshots()
    chosen = snaps if not wanted else [select(snaps, ref, None, source.location) for ref in wanted]
    unique = sorted({s.id: s for s in chosen}.values(), key=lambda s: (s.time, s.id))
    return [(snap, source.single_file(snap)) for snap in unique]


def migrate(
    source: ResticRepository,
    target: Repository,
    wanted: Sequence[str] = (),
    on_copied: Callable[[Copied], None] | None = None,
) -> MigrateResult:
    """Copy the planned snapshots into `target`, each read (every blob verified) straight into its writer."""
    copied: list[Copied] = []
    skipped: list[str] = []
    with source.reading():
        todo = plan(source, wanted)
        done = {s.source for s in target.snapshots()}
        for snap, node in todo:
            if source_of(snap) in done:
                skipped.append(snap.id)
                continue
            loader = source.loader(f"restic snapshot {snap.short_id}")
            not_copied: list[str] = []
            if node is not None:
                chunks, filename = iter_file(loader, node), node.name
            else:
                chunks, filename = tar_stream(loader, snap.tree, not_copied), tar_name(snap)
            new = target.backup(
                cast(BinaryIO, ChunksReader(chunks)),
                hostname=snap.hostname,
                tags=snap.tags,
                source=source_of(snap),
                filename=filename,
                times=(snap.time, snap.end_time or snap.time),
            )
            item = Copied(snap.id, new, tuple(not_copied))
            source.warnings.extend(f"restic snapshot {snap.short_id}: {w}" for w in not_copied)
            copied.append(item)
            if on_copied is not None:
                on_copied(item)
    return MigrateResult(copied, skipped)
