"""Reading blobs out of packs, for both repository formats: runs of neighbouring blobs fetched with one ranged
read each, every blob opened (decrypted, decompressed, checked against its id) by its format's function, read
ahead on a small pool and handed back in order. Layer: repository core; knows Storage, no format's crypto.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

import zstandard

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError

MAX_RUN = 2 * 1024 * 1024  # plaintext bytes of one run: with the read-ahead depth, what bounds memory
_PIECE = 1 << 20  # decompressed bytes produced per step by `decompress_capped`


class TooLarge(ValueError):
    """Compressed data that declares or produces more bytes than its cap."""


def decompress_capped(dec: zstandard.ZstdDecompressor, data: bytes | memoryview, limit: int) -> bytes:
    """The zstd frames of `data` decompressed, never more than `limit` bytes produced or allocated.

    A frame header declaring a larger content size is refused before anything is decompressed (zstd's
    one-shot `decompress` would allocate that size whatever `max_output_size` says); output is produced
    in bounded pieces. TooLarge past `limit`; zstandard.ZstdError for data that is not zstd.
    """
    declared = zstandard.frame_content_size(data)
    if declared > limit:
        raise TooLarge(f"declares {declared} bytes")
    reader = dec.stream_reader(data, read_across_frames=True)
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        piece = reader.read(min(limit + 1 - total, _PIECE))
        if not piece:
            break
        parts.append(piece)
        total += len(piece)
    if total > limit:
        raise TooLarge(f"produces more than {limit} bytes")
    return parts[0] if len(parts) == 1 else b"".join(parts)


class Located(Protocol):
    """Where a blob is stored (native `BlobRef`, restic `BlobLoc`)."""

    @property
    def id(self) -> bytes: ...
    @property
    def pack(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...  # stored (sealed) bytes
    @property
    def raw_length(self) -> int: ...  # plaintext bytes


L = TypeVar("L", bound=Located)
T = TypeVar("T")
A = TypeVar("A")
R = TypeVar("R")

# Decrypt, decompress (with the calling thread's decompressor) and verify one stored blob against its id and
# recorded length; returns the format's result (the plaintext, or more) or raises RepositoryError naming the
# blob and its pack. Called from several threads at once.
OpenBlob = Callable[[L, memoryview, zstandard.ZstdDecompressor], T]


class PackReader(Generic[L, T]):
    """Runs of blobs out of packs in `storage`: one ranged read per run, each blob opened by `open_blob`.

    `object_name` maps a pack id to its object in the storage, `pack_label` to how messages name it;
    `context` (e.g. "snapshot 1a2b3c4d") starts every error message. Thread-safe.
    """

    def __init__(
        self,
        storage: Storage,
        open_blob: OpenBlob[L, T],
        object_name: Callable[[str], str],
        context: str,
        pack_label: Callable[[str], str] = str,
    ) -> None:
        self.storage = storage
        self.context = context
        self._open_blob = open_blob
        self._object_name = object_name
        self._pack_label = pack_label
        self._local = threading.local()

    def decompressor(self) -> zstandard.ZstdDecompressor:
        """The calling thread's zstd decompressor (one per thread: they are not thread-safe)."""
        dec = getattr(self._local, "dec", None)
        if dec is None:
            dec = self._local.dec = zstandard.ZstdDecompressor()
        return dec

    def read_run(self, locs: Sequence[L], what: str) -> list[T]:
        """The opened blobs of a run stored back to back in one pack, fetched with one ranged read."""
        first, last = locs[0], locs[-1]
        length = last.offset + last.length - first.offset
        held = f"holds {what} {first.id.hex()[:16]}"
        try:
            data = self.storage.get(self._object_name(first.pack), first.offset, length)
        except ObjectNotFound:
            raise RepositoryError(
                f"{self.context}: pack {self._pack_label(first.pack)} is missing ({held})"
            ) from None
        if len(data) != length:
            raise RepositoryError(f"{self.context}: pack {self._pack_label(first.pack)} is truncated ({held})")
        view, dec, start = memoryview(data), self.decompressor(), first.offset
        return [self._open_blob(loc, view[loc.offset - start : loc.offset - start + loc.length], dec) for loc in locs]


def runs(locs: Iterable[L], max_bytes: int = MAX_RUN) -> Iterator[list[L]]:
    """Locations grouped into runs stored back to back in one pack, each at most `max_bytes` of plaintext
    (a single larger blob makes a run of its own)."""
    run: list[L] = []
    size = 0
    for loc in locs:
        if run and (
            loc.pack != run[-1].pack
            or loc.offset != run[-1].offset + run[-1].length
            or size + loc.raw_length > max_bytes
        ):
            yield run
            run, size = [], 0
        run.append(loc)
        size += loc.raw_length
    if run:
        yield run


def read_ahead(items: Iterable[A], read: Callable[[A], R], *, workers: int, depth: int, name: str) -> Iterator[R]:
    """`read(item)` for each item on a pool of `workers` threads, at most `depth` in flight, results in order.

    Memory is bounded by `depth` results; closing the iterator early cancels what is queued and waits for
    what runs, so no thread outlives it.
    """
    window: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        for item in items:
            window.append(pool.submit(read, item))
            if len(window) >= depth:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        for future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
