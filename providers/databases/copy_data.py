"""COPY data in a psql stream (pure): whether a chunk of rows can hold the block's end, so that the stream
filters pass rows on without looking at them line by line."""

from __future__ import annotations


def rows_only(data: bytes, line_start: bool) -> bool:
    """Inside COPY data: the chunk holds no end of the block (`\\.` starting a line), whole or begun; `line_start`
    says whether the chunk's first byte starts a line."""
    slash = data.find(b"\\")  # memchr-fast: most rows hold no backslash
    if slash < 0:
        return True
    if data.find(b"\n\\.", slash - 1 if slash else 0) >= 0 or data.endswith(b"\n\\"):
        return False
    return not (line_start and data.startswith(b"\\"))
