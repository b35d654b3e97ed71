"""The restore pipeline: content list -> fetch + open + decompress blobs on a pool -> write in order -> stream checksum.

Every failure names what is missing or corrupt: the chunk, its pack and the snapshot. A blob that fails
authentication, decompression or its id marks its pack damaged (`damage.py`), so the next backup stores it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

import zstandard

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository.blobreader import PackReader, read_ahead, runs
from stashplan.repository.crypto import (
    CHUNK_CHECKSUM,
    CorruptData,
    MasterKey,
    checksum_hasher,
    chunk_digest,
)
from stashplan.repository.damage import Marker
from stashplan.repository.index import Index
from stashplan.repository.layout import BLOB_DATA, BLOB_LIST, pack_name
from stashplan.repository.packs import BlobRef
from stashplan.repository.snapshots import Manifest

_KINDS = {BLOB_DATA: "chunk", BLOB_LIST: "content list"}  # how messages name a blob of each type


class BlobReader:
    """Loads native blobs by id through the index: the shared pack reader with this format's opening."""

    def __init__(self, storage: Storage, key: MasterKey, index: Index, context: str) -> None:
        self.storage = storage
        self.key = key
        self.index = index
        self.context = context
        self.packs: PackReader[BlobRef, tuple[bytes, bytes]] = PackReader(storage, self._open, pack_name, context)
        self.mark = Marker(storage, key)

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
        return [plain for plain, _digest in self.packs.read_run(refs, what)]

    def read_run(self, refs: list[BlobRef], what: str = "chunk") -> list[tuple[bytes, bytes]]:
        """`load_run` with each plaintext's digest: format 4, where it is checked against the blob's id
        (b"" before format 4, whose ids would cost a second hash pass)."""
        return self.packs.read_run(refs, what)

    def _open(self, ref: BlobRef, sealed: memoryview, dec: zstandard.ZstdDecompressor) -> tuple[bytes, bytes]:
        try:
            return self._verified(ref, sealed, dec)
        except RepositoryError as exc:
            self.mark(ref.pack, str(exc))
            raise

    def _verified(self, ref: BlobRef, sealed: memoryview, dec: zstandard.ZstdDecompressor) -> tuple[bytes, bytes]:
        label = f"{_KINDS.get(ref.type, 'blob')} {ref.id.hex()[:16]}"
        try:
            compressed = self.key.open(sealed, ref.id, what=f"{label} in pack {ref.pack}")
            plain = dec.decompress(compressed, max_output_size=ref.raw_length)
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
    refs = (reader.ref(blob_id) for blob_id in chunk_ids(reader, manifest))
    for parts in read_ahead(runs(refs), reader.read_run, workers=workers, depth=workers * 2, name="stashplan-restore"):
        for data, chunk_hash in parts:
            out.write(data)
            digest.update(chunk_hash if by_digests else data)
            written += len(data)
        if progress is not None:
            progress(written)
    if written != snap.total_size:
        raise RepositoryError(
            f"snapshot {snap.short_id}: restored {written} bytes, the snapshot records {snap.total_size}"
        )
    if digest.hexdigest() != recorded:
        raise RepositoryError(
            f"snapshot {snap.short_id}: {algorithm} checksum mismatch: restored {digest.hexdigest()}, recorded {recorded}"
        )
