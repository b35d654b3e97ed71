"""Small stream adapters the backends share: an iterator of byte chunks read as a binary file."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast


class ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks; `on_close` releases the connection."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None] | None = None) -> None:
        self._chunks = chunks
        self._pending = b""
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buf), len(self._pending))
        buf[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            self._on_close()
        super().close()


def chunk_stream(chunks: Iterator[bytes], on_close: Callable[[], None] | None = None) -> BinaryIO:
    """`chunks` as a buffered binary file object (what `Storage.open` returns)."""
    return cast(BinaryIO, io.BufferedReader(ChunkReader(chunks, on_close), buffer_size=1 << 20))
