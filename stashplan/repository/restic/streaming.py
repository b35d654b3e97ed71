"""Streaming one file of a restic snapshot: its data blobs fetched and opened on a small pool, written in order.

Memory is bounded by the window (workers + 1 runs of at most MAX_RUN stored bytes plus one blob each).
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO

from stashplan.errors import RepositoryError
from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.index import BlobLoc
from stashplan.repository.restic.trees import Node

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_RUN = 2 * 1024 * 1024


def runs(loader: BlobLoader, content: tuple[bytes, ...]) -> Iterator[list[BlobLoc]]:
    """Blob locations grouped into runs stored back to back in one pack (at most MAX_RUN bytes)."""
    run: list[BlobLoc] = []
    size = 0
    for blob_id in content:
        loc = loader.loc(blob_id, "data")
        if run and (
            loc.pack != run[-1].pack
            or loc.offset != run[-1].offset + run[-1].length
            or size + loc.length > MAX_RUN
        ):
            yield run
            run, size = [], 0
        run.append(loc)
        size += loc.length
    if run:
        yield run


def iter_file(loader: BlobLoader, node: Node, *, workers: int = 2) -> Iterator[bytes]:
    """The file's content blob by blob, each verified; raises (before the end) if its size is off."""
    if node.type != "file":
        hint = " (a directory restores with --target DIR)" if node.type == "dir" else ""
        raise RepositoryError(f"{loader.context}: {node.name} is a {node.type}, not a file{hint}")
    produced = 0
    window: deque[Future[list[bytes]]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stashplan-restic")
    try:
        for run in runs(loader, node.content):
            window.append(pool.submit(loader.load_run, run))
            if len(window) > workers:
                for data in window.popleft().result():
                    produced += len(data)
                    yield data
        while window:
            for data in window.popleft().result():
                produced += len(data)
                yield data
    finally:
        for future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
    if produced != node.size:
        raise RepositoryError(
            f"{loader.context}: {node.name} has {produced} bytes, its tree records {node.size}"
        )


def stream_file(
    loader: BlobLoader, node: Node, out: BinaryIO, progress: Callable[[int], None] | None = None
) -> int:
    """Write the file's content to `out`, every blob verified; returns the bytes written."""
    written = 0
    for data in iter_file(loader, node):
        out.write(data)
        written += len(data)
        if progress is not None:
            progress(written)
    return written


class ChunksReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte strings; the iterator's errors propagate to read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf = memoryview(nxt)
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
