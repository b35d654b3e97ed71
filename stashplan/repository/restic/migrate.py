"""`migrate`: copy restic snapshots (Stash's backups) into a stashplan repository, keeping time, host and tags.

Each restic snapshot of one file (what `restic backup --stdin` makes) becomes one stashplan snapshot whose
`source` is `restic:<restic snapshot id>`; snapshots copied before are skipped, so a rerun resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

from stashplan.errors import RepositoryError
from stashplan.repository.repo import Repository
from stashplan.repository.restic.repo import ResticRepository
from stashplan.repository.restic.snapshots import ResticSnapshot, select
from stashplan.repository.restic.streaming import ChunksReader, iter_file
from stashplan.repository.restic.trees import Node
from stashplan.repository.snapshots import Snapshot

SOURCE_PREFIX = "restic:"


@dataclass(frozen=True)
class Copied:
    restic_id: str
    snapshot: Snapshot  # the new stashplan snapshot


@dataclass(frozen=True)
class MigrateResult:
    copied: list[Copied]
    skipped: list[str]  # restic snapshot ids copied by an earlier run


def source_of(snap: ResticSnapshot) -> str:
    return f"{SOURCE_PREFIX}{snap.id}"


def plan(source: ResticRepository, wanted: Sequence[str]) -> list[tuple[ResticSnapshot, Node]]:
    """The snapshots to copy (all, or those named by id/prefix/latest) with their file, oldest first;
    RepositoryError naming every selected snapshot that is not a single stream, before anything is copied."""
    snaps = source.restic_snapshots()
    chosen = snaps if not wanted else [select(snaps, ref, None, source.location) for ref in wanted]
    unique = sorted({s.id: s for s in chosen}.values(), key=lambda s: (s.time, s.id))
    out: list[tuple[ResticSnapshot, Node]] = []
    not_streams: list[str] = []
    for snap in unique:
        node = source.single_file(snap)
        if node is None:
            not_streams.append(snap.short_id)
        else:
            out.append((snap, node))
    if not_streams:
        raise RepositoryError(
            f"restic snapshots {', '.join(not_streams)} hold files and directories, not one stream "
            "(as `restic backup --stdin` makes): stashplan snapshots hold one stream each; "
            "choose the --stdin snapshots with --snapshots"
        )
    return out


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
            reader = ChunksReader(iter_file(source.loader(f"restic snapshot {snap.short_id}"), node))
            new = target.backup(
                cast(BinaryIO, reader),
                hostname=snap.hostname,
                tags=snap.tags,
                source=source_of(snap),
                filename=node.name,
                times=(snap.time, snap.end_time or snap.time),
            )
            item = Copied(snap.id, new)
            copied.append(item)
            if on_copied is not None:
                on_copied(item)
    return MigrateResult(copied, skipped)
