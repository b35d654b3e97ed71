"""`stashplan pg basebackup`: pg_basebackup's tar stream (`-D - -Ft -X none --checkpoint=fast`, with its
backup_manifest, which PostgreSQL 15 appends to the tar when writing to stdout) piped straight into a
snapshot: chunked, deduplicated against earlier base backups, compressed and encrypted, no scratch disk.

`backup_label` (start LSN, timeline, start time) and `backup_manifest` (the WAL range up to the stop LSN) are
picked out of the passing stream; the stop is known only at its end, so the snapshot is written with the
`pg-basebackup` tag and then rewritten once with every `pg-*` tag (labels.py), under one shared lock held
throughout, so a prune never sees neither manifest. A snapshot without `pg-stop-lsn` (a crash between the
two writes) is not a usable base backup. The password is PGPASSWORD in the environment, never in argv.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import BinaryIO, cast

from providers.databases.base import ProcessSpec
from providers.storage import ObjectNotFound
from stashplan.errors import StashplanError
from stashplan.pitr.labels import (
    BASE_FILENAME,
    BASEBACKUP_TAG,
    BaseBackup,
    backup_tags,
    from_tags,
    parse_backup_label,
    parse_wal_range,
)
from stashplan.pitr.tarscan import TarScanner
from stashplan.repository import locks
from stashplan.repository.layout import SNAPSHOTS
from stashplan.repository.repo import Repository
from stashplan.repository.snapshots import (
    InvokerRef,
    Snapshot,
    TargetRef,
    encode,
    load_manifest,
    write_manifest,
)
from stashplan.transfer.pipe import ProcessReader

LABEL, MANIFEST = "backup_label", "backup_manifest"


def basebackup_argv(binary: str, host: str, port: int, user: str) -> tuple[str, ...]:
    """pg_basebackup to stdout: tar of the main tablespace, no WAL (it is archived), a fast checkpoint, the
    manifest inside the tar, never a password prompt (-w)."""
    return (
        binary, "-h", host, "-p", str(port), "-U", user, "-D", "-", "-Ft", "-X", "none",
        "--checkpoint=fast", "-w", "--label=stashplan pg basebackup",
    )  # fmt: skip


def _retag(repo: Repository, snapshot: Snapshot, tags: list[str]) -> str:
    """Rewrite `snapshot`'s manifest with `tags` (the new manifest first, then the old one deleted); the new id."""
    manifest = load_manifest(repo.storage, repo.key, snapshot.id)
    doc = encode(replace(manifest.snapshot, tags=tuple(tags)), manifest.content, manifest.chunk_count)
    new_id = write_manifest(repo.storage, repo.key, doc)
    try:
        repo.storage.delete(SNAPSHOTS + snapshot.id)
    except ObjectNotFound:
        pass
    return new_id


def run_basebackup(
    repo: Repository,
    argv: tuple[str, ...] | ProcessSpec,
    *,
    hostname: str,
    source: str,
    deadline: float | None = None,
    extra_tags: Sequence[str] = (),
    invoker: InvokerRef | None = None,
    target: TargetRef | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[BaseBackup, Snapshot]:
    """Stream one base backup into `repo`; StashplanError (and no snapshot) if pg_basebackup fails or its
    tar lacks a backup_label or backup_manifest. `argv` may be a ProcessSpec carrying the environment (the
    password); `extra_tags`, `invoker` and `target` are recorded as a BackupSession records them."""
    spec = argv if isinstance(argv, ProcessSpec) else ProcessSpec(argv, label="pg_basebackup")
    reader = ProcessReader(spec, deadline=deadline, empty_ok=False)
    scanner = TarScanner(reader, (LABEL, MANIFEST))
    lock = locks.Lock(repo.storage, exclusive=False, operation="pg basebackup")
    with locks.released_on_sigterm():
        lock.acquire(repo.lock_wait)
        try:
            with reader:
                snapshot = repo.backup(
                    cast(BinaryIO, _Checked(scanner)),
                    hostname=hostname,
                    tags=[BASEBACKUP_TAG, *extra_tags],
                    source=source,
                    filename=BASE_FILENAME,
                    progress=progress,
                    invoker=invoker,
                    target=target,
                )
            start = parse_backup_label(scanner.members[LABEL].decode())
            timeline, _start_lsn, stop_lsn = parse_wal_range(scanner.members[MANIFEST])
            if timeline != start.timeline:
                raise StashplanError(
                    f"base backup: backup_label says timeline {start.timeline}, manifest {timeline}"
                )
            tags = [*backup_tags(start, stop_lsn), *extra_tags]
            new_id = _retag(repo, snapshot, tags)
        finally:
            lock.release()
    found = from_tags(new_id, tags, snapshot.end_time)
    assert found is not None
    return found, replace(snapshot, id=new_id, short_id=new_id[:8], tags=tuple(tags))


class _Checked:
    """The scanner, failing at end of stream (so that no snapshot is written) when the tar was cut short or
    lacks the members a base backup needs."""

    def __init__(self, scanner: TarScanner) -> None:
        self._scanner = scanner

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self._scanner.readinto(buffer)
        if not n:
            missing = [m for m in (LABEL, MANIFEST) if m not in self._scanner.members]
            if missing or not self._scanner.finished:
                what = f"has no {' or '.join(missing)}" if missing else "ends in the middle of a member"
                raise StashplanError(
                    f"pg_basebackup's tar stream {what}: not a complete base backup (pg_basebackup 13 or newer, "
                    "with its manifest, is required)"
                )
        return n

    def forced_cuts(self, start: int, end: int) -> list[int]:
        """Where the chunker ends a chunk: at each file of the tar, so that an unchanged file is stored once."""
        return self._scanner.forced_cuts(start, end)

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size > 0 else 1024 * 1024)
        return bytes(buffer[: self.readinto(buffer)])
