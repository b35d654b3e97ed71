"""The WAL archive in a repository: `wal-push` stores one file PostgreSQL hands to `archive_command`,
`wal-fetch` gives one back to `restore_command`, and the listing feeds the recoverable window.

Each file is a named object `wal/<timeline>/<file name>` (`repository.named_objects`): zstd-compressed,
sealed, bound to its name, with a header recording its size, BLAKE3 and when PostgreSQL last wrote it.
Pushing is idempotent: the same content again is a no-op, different content under an existing name is
refused (as pgBackRest does), and of two concurrent pushes exactly one object lands (create-if-absent).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import blake3

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import StashplanError
from stashplan.pitr.walnames import (
    DEFAULT_SEGMENT_SIZE,
    WAL_PREFIX,
    WalFile,
    WalKind,
    archive_lacks,
    archived_names,
    format_lsn,
    parse_wal_name,
    segment_number,
)
from stashplan.repository.crypto import CorruptData
from stashplan.repository.layout import CONFIG
from stashplan.repository.named_objects import open_named, seal_named
from stashplan.repository.repo import Repository


class WalConflict(StashplanError):
    """A different file is archived under the name being pushed."""


class Pushed(StrEnum):
    STORED = "stored"
    ALREADY = "already archived (same content)"


@dataclass(frozen=True)
class Archived:
    """What the archive holds: per timeline, the segment numbers, and every other file (history, backup,
    partial) by name. A timeline's newest segment may be held only as a `.partial` (wal-receive's, or the one
    a promotion leaves): it is then among `segments` and in `partial_tails`."""

    segments: dict[int, set[int]]
    others: tuple[str, ...]
    partial_tails: dict[int, int] = field(default_factory=dict)


def _same(repo: Repository, wal: WalFile, digest: str, size: int) -> bool:
    header, _body = open_named(repo.key, wal.object_name, repo.storage.get(wal.object_name))
    return bool(header.get("blake3") == digest and header.get("size") == size)


def push(repo: Repository, path: Path) -> Pushed:
    """Archive the WAL file at `path` (its name says what it is); WalConflict when the archive holds other
    content under that name."""
    wal = parse_wal_name(path.name)
    data = path.read_bytes()
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    digest = blake3.blake3(data).hexdigest()
    name = wal.object_name
    for _attempt in range(2):
        if repo.storage.exists(name):
            if _same(repo, wal, digest, len(data)):
                return Pushed.ALREADY
            raise WalConflict(
                f"WAL file {wal.name}: the repository already holds a different file under this name "
                f"({name}); refusing to overwrite it (is another database archiving into this repository?)"
            )
        header = {"version": 1, "name": wal.name, "kind": wal.kind.value, "last_written": mtime.isoformat()}
        if repo.storage.put_if_absent(name, seal_named(repo.key, name, header, data, repo.params.zstd_level)):
            return Pushed.STORED
    raise StashplanError(
        f"WAL file {wal.name}: {name} appeared and vanished while pushing; retry"
    )  # pragma: no cover


def read(repo: Repository, file_name: str) -> bytes:
    """The archived `file_name`'s bytes; ObjectNotFound or CorruptData."""
    wal = parse_wal_name(file_name)
    return open_named(repo.key, wal.object_name, repo.storage.get(wal.object_name))[1]


def absent(storage: Storage, file_name: str) -> bool:
    """True when `storage` holds a repository (its config) and neither object `fetch` would read: a miss is
    answered without the repository's key (recovery asks for the segment after the last one, and for the
    next timeline's history, before it promotes)."""
    return archive_lacks(storage.exists, CONFIG, file_name)


def fetch(repo: Repository, file_name: str, destination: Path, *, partial: bool = True) -> bool:
    """Write the archived `file_name` to `destination` (via a temporary file renamed into place); for a
    segment held only as `<segment>.partial`, the partial one (recovery replays what it holds, then ends),
    unless `partial` is False. False when the archive holds neither. CorruptData when the stored object is
    damaged."""
    names = archived_names(file_name, partial)
    for name in names:
        try:
            data = repo.storage.get(name)
            break
        except ObjectNotFound:
            continue
    else:
        return False
    _header, body = open_named(repo.key, name, data)
    temporary = destination.with_name(destination.name + ".stashplan-tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return True


def listed(repo: Repository) -> list[str]:
    """The names of the WAL files in the archive (objects under names `wal-push` would not write left out)."""
    out = []
    for info in repo.storage.list(WAL_PREFIX):
        try:
            wal = parse_wal_name(info.name.rsplit("/", 1)[-1])
        except ValueError:
            continue
        if wal.object_name == info.name:
            out.append(wal.name)
    return out


def delete(repo: Repository, name: str) -> None:
    """Delete the archived WAL file `name` (retention); gone already is fine."""
    with contextlib.suppress(ObjectNotFound):
        repo.storage.delete(parse_wal_name(name).object_name)


def archived(repo: Repository, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Archived:
    """One listing of `wal/`: what the archive holds. Objects under names that are not WAL names are
    left out (they were not written by `wal-push`)."""
    segments: dict[int, set[int]] = {}
    partials: dict[int, set[int]] = {}
    others: list[str] = []
    for info in repo.storage.list(WAL_PREFIX):
        try:
            wal = parse_wal_name(info.name.rsplit("/", 1)[-1])
        except ValueError:
            continue
        if wal.object_name != info.name:
            continue
        if wal.kind is WalKind.SEGMENT:
            segments.setdefault(wal.timeline, set()).add(segment_number(wal.name, segment_size))
        else:
            others.append(wal.name)
        if wal.kind is WalKind.PARTIAL:
            partials.setdefault(wal.timeline, set()).add(segment_number(wal.segment, segment_size))
    tails = {}
    for timeline, numbers in partials.items():
        newest = max(numbers)
        if newest > max(segments.get(timeline, set()), default=-1):
            segments.setdefault(timeline, set()).add(newest)
            tails[timeline] = newest
    return Archived(segments, tuple(sorted(others)), tails)


def header_of(repo: Repository, file_name: str) -> dict | None:
    """The header of the archived `file_name`; None if it cannot be read."""
    wal = parse_wal_name(file_name)
    try:
        return open_named(repo.key, wal.object_name, repo.storage.get(wal.object_name))[0]
    except (ObjectNotFound, CorruptData):
        return None


def last_written(repo: Repository, segment: str) -> datetime | None:
    """When PostgreSQL last wrote the archived `segment` (from its header); None if it cannot be read."""
    header = header_of(repo, segment)
    try:
        return None if header is None else datetime.fromisoformat(str(header["last_written"]))
    except (KeyError, ValueError):
        return None


def store_partial(
    repo: Repository, name: str, data: bytes, written: datetime, received_to: int | None
) -> None:
    """Store (or replace) the partial segment `name` (`<segment>.partial`, as pg_receivewal names it) with
    `data`, last written at `written`; `received_to` is an LSN up to which it is known to hold WAL. Only
    wal-receive replaces objects."""
    wal = parse_wal_name(name)
    if wal.kind is not WalKind.PARTIAL:
        raise ValueError(f"{name}: not a partial segment")
    header: dict[str, object] = {
        "version": 1,
        "name": wal.name,
        "kind": wal.kind.value,
        "last_written": written.isoformat(),
    }
    if received_to is not None:
        header["received_to"] = format_lsn(received_to)
    repo.storage.put(
        wal.object_name, seal_named(repo.key, wal.object_name, header, data, repo.params.zstd_level)
    )


def drop_partial(repo: Repository, segment: str) -> None:
    """Delete `<segment>.partial` from the archive, once the whole segment is there."""
    with contextlib.suppress(ObjectNotFound):
        repo.storage.delete(parse_wal_name(segment + ".partial").object_name)
