"""The restore pipeline: content list -> fetch + open + decompress blobs on a pool -> write in order -> stream checksum.

Every failure names what is missing or corrupt: the chunk, its pack and the snapshot.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import zstandard

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import (
    CHUNK_CHECKSUM,
    CorruptData,
    MasterKey,
    checksum_hasher,
    chunk_digest,
)
from stashplan.repository.index import Index
from stashplan.repository.layout import pack_name
from stashplan.repository.packs import BlobRef
from stashplan.repository.snapshots import Manifest

MAX_RUN = 2 * 1024 * 1024


class BlobReader:
    """Loads single blobs by id through the index, with per-thread zstd decompressors."""

    def __init__(self, storage: Storage, key: MasterKey, index: Index, context: str) -> None:
        self.storage = storage
        self.key = key
        self.index = index
        self.context = context
        self._local = threading.local()

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        dec = getattr(self._local, "dec", None)
        if dec is None:
            dec = self._local.dec = zstandard.ZstdDecompressor()
        return dec

    def ref(self, blob_id: bytes, what: str = "chunk") -> BlobRef:
        ref = self.index.get(blob_id)
        if ref is None:
            raise RepositoryError(
                f"{self.context}: {what} {blob_id.hex()[:16]} is not in the index (its pack is lost); run check"
            )
        return ref

    def load(self, blob_id: bytes, what: str = "chunk") -> bytes:
        return self.load_run([self.ref(blob_id, what)], what)[0]

    def load_run(self, refs: list[BlobRef], what: str = "chunk") -> list[bytes]:
        """The plaintexts of blobs stored back to back in one pack, fetched with one ranged read."""
        return [plain for plain, _digest in self.read_run(refs, what)]

    def read_run(self, refs: list[BlobRef], what: str = "chunk") -> list[tuple[bytes, bytes]]:
        """`load_run` with each plaintext's digest: format 4, where it is checked against the blob's id
        (b"" before format 4, whose ids would cost a second hash pass)."""
        first = refs[0]
        length = refs[-1].offset + refs[-1].length - first.offset
        try:
            data = self.storage.get(pack_name(first.pack), first.offset, length)
        except ObjectNotFound:
            raise RepositoryError(
                f"{self.context}: pack {first.pack} is missing (holds {what} {first.id.hex()[:16]})"
            ) from None
        view = memoryview(data)
        return [
            self._open(r, view[r.offset - first.offset : r.offset - first.offset + r.length], what)
            for r in refs
        ]

    def _open(self, ref: BlobRef, sealed: memoryview, what: str) -> tuple[bytes, bytes]:
        label = f"{what} {ref.id.hex()[:16]}"
        if len(sealed) != ref.length:
            raise RepositoryError(f"{self.context}: pack {ref.pack} is truncated (holds {label})")
        try:
            compressed = self.key.open(sealed, ref.id, what=f"{label} in pack {ref.pack}")
            plain = self._decompressor().decompress(compressed, max_output_size=ref.raw_length)
        except CorruptData as exc:
            raise RepositoryError(f"{self.context}: {exc}") from None
        except zstandard.ZstdError:
            raise RepositoryError(
                f"{self.context}: {label} in pack {ref.pack} is corrupt (bad zstd data)"
            ) from None
        if len(plain) != ref.raw_length:
            raise RepositoryError(f"{self.context}: {label} in pack {ref.pack} is corrupt (wrong length)")
        digest = b""
        if self.key.digests:
            digest = chunk_digest(plain)
            if self.key.id_of_digest(digest) != ref.id:
                raise RepositoryError(
                    f"{self.context}: {label} in pack {ref.pack} is corrupt (its content does not match its id)"
                )
        return plain, digest


def chunk_ids(reader: BlobReader, manifest: Manifest) -> Iterator[bytes]:
    """The snapshot's chunk ids in stream order, one list blob in memory at a time."""
    count = 0
    for list_id in manifest.content:
        ids = reader.load(list_id, "content list")
        for pos in range(0, len(ids), 32):
            count += 1
            yield ids[pos : pos + 32]
    if count != manifest.chunk_count:
        raise RepositoryError(
            f"{reader.context}: content list has {count} chunks, manifest says {manifest.chunk_count}"
        )


def runs(reader: BlobReader, ids: Iterator[bytes]) -> Iterator[list[BlobRef]]:
    """Chunk refs grouped into runs stored back to back in one pack (at most MAX_RUN plaintext bytes)."""
    run: list[BlobRef] = []
    size = 0
    for blob_id in ids:
        ref = reader.ref(blob_id)
        if run and (
            ref.pack != run[-1].pack
            or ref.offset != run[-1].offset + run[-1].length
            or size + ref.raw_length > MAX_RUN
        ):
            yield run
            run, size = [], 0
        run.append(ref)
        size += ref.raw_length
    if run:
        yield run


def run_restore(
    storage: Storage,
    key: MasterKey,
    index: Index,
    manifest: Manifest,
    out: BinaryIO,
    progress: Callable[[int], None] | None = None,
    *,
    workers: int = 3,
) -> None:
    """Write the snapshot's stream to `out`, verifying its size and stream checksum; RepositoryError otherwise."""
    snap = manifest.snapshot
    reader = BlobReader(storage, key, index, f"snapshot {snap.short_id}")
    algorithm, _, recorded = snap.checksum.partition(":")
    by_digests = algorithm == CHUNK_CHECKSUM  # format 4: the checksum hashes the chunks' digests
    digest = checksum_hasher(algorithm)
    written = 0
    window: deque[Future[list[tuple[bytes, bytes]]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stashplan-restore")

    def emit(parts: list[tuple[bytes, bytes]]) -> None:
        nonlocal written
        for data, chunk_hash in parts:
            out.write(data)
            digest.update(chunk_hash if by_digests else data)
            written += len(data)
        if progress is not None:
            progress(written)

    try:
        for refs in runs(reader, chunk_ids(reader, manifest)):
            window.append(pool.submit(reader.read_run, refs))
            if len(window) >= workers * 2:
                emit(window.popleft().result())
        while window:
            emit(window.popleft().result())
    finally:
        for future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
    if written != snap.total_size:
        raise RepositoryError(
            f"snapshot {snap.short_id}: restored {written} bytes, the snapshot records {snap.total_size}"
        )
    if digest.hexdigest() != recorded:
        raise RepositoryError(
            f"snapshot {snap.short_id}: {algorithm} checksum mismatch: restored {digest.hexdigest()}, recorded {recorded}"
        )
