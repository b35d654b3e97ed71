"""Pack objects: sealed blobs back to back, then a sealed header listing them, then the header's length.

    pack   = blob_1 || ... || blob_n || sealed(header) || uint32_le(len(sealed(header)))
    header = n x (type u8 || id 32 bytes || sealed length u32 || plaintext length u32)
A pack's id is the hash (hex) of its bytes with the repository's name algorithm (BLAKE3; SHA-256 before
format version 4); its object name is `data/<id[:2]>/<id>`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stashplan.repository.crypto import CorruptData, MasterKey

ENTRY = struct.Struct("<B32sII")
TRAILER = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Where one blob lives: pack id, byte offset and sealed length, plaintext length and blob type."""

    id: bytes
    type: int
    pack: str
    offset: int
    length: int
    raw_length: int


@dataclass
class Pack:
    """A finished pack: its id, its bytes (a view into a reusable buffer) and the refs of its blobs."""

    id: str
    data: memoryview
    refs: list[BlobRef]
    buffer: bytearray


class PackBuilder:
    """Collects sealed blobs until `size` reaches the target, then `finish` returns the pack.

    Packs are built in buffers that grow to the largest pack seen and are reused once `recycle` hands
    them back, so a long backup allocates a few buffers once instead of one per pack.
    """

    def __init__(self, key: MasterKey) -> None:
        self._key = key
        self._free: list[bytearray] = []
        self._buf: bytearray | None = None
        self._entries: list[tuple[int, bytes, int, int]] = []
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _write(self, data: bytes | bytearray) -> None:
        if self._buf is None:
            self._buf = self._free.pop() if self._free else bytearray()
        end = self.size + len(data)
        if end <= len(self._buf):
            self._buf[self.size : end] = data  # in place: a reused buffer keeps its allocation
        else:
            self._buf[self.size :] = data  # grows the buffer, which keeps that size for reuse
        self.size = end

    def add(self, blob_type: int, blob_id: bytes, sealed: bytes | bytearray, raw_length: int) -> None:
        self._write(sealed)
        self._entries.append((blob_type, blob_id, len(sealed), raw_length))

    def finish(self) -> Pack:
        """The finished pack; the builder starts a new one afterwards."""
        blobs_end = self.size
        header = b"".join(ENTRY.pack(t, i, n, r) for t, i, n, r in self._entries)
        sealed_header = self._key.seal(header, b"pack-header")
        self._write(sealed_header)
        self._write(TRAILER.pack(len(sealed_header)))
        assert self._buf is not None
        data = memoryview(self._buf)[: self.size]
        pack_id = self._key.object_id(data)
        refs, offset = [], 0
        for t, i, n, r in self._entries:
            refs.append(BlobRef(i, t, pack_id, offset, n, r))
            offset += n
        assert offset == blobs_end
        pack = Pack(pack_id, data, refs, self._buf)
        self._buf, self._entries, self.size = None, [], 0
        return pack

    def recycle(self, pack: Pack) -> None:
        """Take back a pack's buffer once nothing reads its data any more."""
        pack.data.release()
        self._free.append(pack.buffer)


def read_header(key: MasterKey, pack_id: str, data: bytes | bytearray) -> list[BlobRef]:
    """The blob refs recorded in a whole pack's own header; CorruptData naming the pack if damaged."""
    what = f"pack {pack_id}"
    if len(data) < TRAILER.size:
        raise CorruptData(f"{what} is corrupt (truncated)")
    (hlen,) = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    start = len(data) - TRAILER.size - hlen
    if start < 0:
        raise CorruptData(f"{what} is corrupt (bad header length)")
    header = key.open(
        memoryview(data)[start : len(data) - TRAILER.size], b"pack-header", what=f"{what} header"
    )
    if len(header) % ENTRY.size:
        raise CorruptData(f"{what} is corrupt (bad header size)")
    refs, offset = [], 0
    for t, i, n, r in ENTRY.iter_unpack(header):
        refs.append(BlobRef(i, t, pack_id, offset, n, r))
        offset += n
    if offset != start:
        raise CorruptData(f"{what} is corrupt (blobs do not fill the pack)")
    return refs
