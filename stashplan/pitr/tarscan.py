"""A tar stream passed through unchanged while a few small members are picked out of it (pure: bytes in,
bytes out). A base backup reads `backup_label` and `backup_manifest` from pg_basebackup's tar this way, so
the stream goes to the repository without touching a disk. The offset where each member begins is
kept, so that the chunker can end a chunk there (each file then deduplicates on its own).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterable
from typing import Protocol

BLOCK = 512


class Readable(Protocol):
    def readinto(self, buffer: bytearray | memoryview, /) -> int | None: ...


class TarFormatError(ValueError):
    """The stream is not a tar archive this scanner reads, or a wanted member is too large."""


def size_field(field: bytes) -> int:
    if field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.rstrip(b"\0 ").lstrip(b" ")
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise TarFormatError(f"tar header: bad size field {field!r}") from None


class TarScanner(io.RawIOBase):
    """Reads `inner` and returns its bytes unchanged; regular members named in `wanted` (each at most `limit`
    bytes) are kept in `members` once complete. `finished` is True when the archive ended with a
    zero block and no member was cut short."""

    def __init__(self, inner: Readable, wanted: Iterable[str], limit: int = 64 * 1024 * 1024) -> None:
        super().__init__()
        self._inner = inner
        self._wanted = set(wanted)
        self._limit = limit
        self.members: dict[str, bytes] = {}
        self._header = bytearray()
        self._left = 0  # bytes of the current member's data (and then its padding) still to pass
        self._pad = 0
        self._name = ""
        self._body: bytearray | None = None
        self.finished = False
        self._offset = 0  # bytes fed so far
        self.starts: list[int] = []  # stream offsets where a member (its header) begins

    def forced_cuts(self, start: int, end: int) -> list[int]:
        """Member starts in (start, end), among the bytes fed so far (the chunker's CutsAt)."""
        starts = self.starts
        return starts[bisect.bisect_right(starts, start) : bisect.bisect_left(starts, end)]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer) or 0
        if n:
            self.feed(memoryview(buffer)[:n])
        return n

    def feed(self, data: memoryview) -> None:
        pos = 0
        while pos < len(data):
            if self._left:
                take = min(self._left, len(data) - pos)
                if self._body is not None:
                    self._body += data[pos : pos + take]
                self._left -= take
                pos += take
                if not self._left:
                    self._member_done()
            elif self._pad:
                take = min(self._pad, len(data) - pos)
                self._pad -= take
                pos += take
            else:
                take = min(BLOCK - len(self._header), len(data) - pos)
                self._header += data[pos : pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    header_at = self._offset + pos - BLOCK
                    self._start_member(bytes(self._header))
                    self._header.clear()
                    if not self.finished:
                        self.starts.append(header_at)
        self._offset += len(data)

    def _start_member(self, header: bytes) -> None:
        if not any(header):
            self.finished = True  # end-of-archive blocks
            return
        self.finished = False
        if header[257:262] != b"ustar":
            raise TarFormatError("not a ustar tar stream (pg_basebackup -Ft writes ustar)")
        name = header[:100].split(b"\0", 1)[0].decode(errors="replace")
        prefix = header[345:500].split(b"\0", 1)[0].decode(errors="replace")
        self._name = f"{prefix}/{name}" if prefix else name
        size = size_field(header[124:136])
        regular = header[156:157] in (b"0", b"\0")
        self._body = None
        if regular and self._name in self._wanted:
            if size > self._limit:
                raise TarFormatError(f"tar member {self._name} is {size} bytes, more than {self._limit}")
            self._body = bytearray()
        self._left = size
        self._pad = -size % BLOCK
        if not size:
            self._member_done()

    def _member_done(self) -> None:
        if self._body is not None:
            self.members[self._name] = bytes(self._body)
            self._body = None
