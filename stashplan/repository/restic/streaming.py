"""Streaming one file of a restic snapshot: its data blobs fetched and opened on a small pool, written in order.

Memory is bounded by the read-ahead: workers + 1 runs of at most `blobreader.MAX_RUN` plaintext bytes
(a larger blob alone).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from stashplan.errors import RepositoryError
from stashplan.repository.blobreader import read_ahead, runs
from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.trees import Node

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


def iter_file(loader: BlobLoader, node: Node, *, workers: int = 2) -> Iterator[bytes]:
    """The file's content blob by blob, each verified; raises (before the end) if its size is off."""
    if node.type != "file":
        hint = " (a directory restores with --target DIR)" if node.type == "dir" else ""
        raise RepositoryError(f"{loader.context}: {node.name} is a {node.type}, not a file{hint}")
    produced = 0
    locs = (loader.loc(blob_id, "data") for blob_id in node.content)
    for blobs in read_ahead(runs(locs), loader.load_run, workers=workers, depth=workers + 1, name="stashplan-restic"):
        for data in blobs:
            produced += len(data)
            yield data
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
