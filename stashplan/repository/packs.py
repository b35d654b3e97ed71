"""Pack objects: sealed blobs back to back, then a sealed header listing them, then the header's length.

    pack   = blob_1 || ... || blob_n || sealed(header) || uint32_le(len(sealed(header)))
    header = n x (type u8 || id 32 bytes || sealed length u32 || plaintext length u32)
A pack's id is the SHA-256 (hex) of its bytes; its object name is `data/<id[:2]>/<id>`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from stashplan.repository.crypto import CorruptData, MasterKey

ENTRY = struct.Struct("<B32sII")
TRAILER = struct.Struct("<I")


@dataclass(frozen=True)
class BlobRef:
    """Where one blob lives: pack id, byte offset and sealed length, plaintext length and blob type."""

    id: bytes
    type: int
    pack: str
    offset: int
    length: int
    raw_length: int


class PackBuilder:
    """Collects sealed blobs until `size` reaches the target, then `finish` returns the pack bytes."""

    def __init__(self, key: MasterKey) -> None:
        self._key = key
        self._buf = bytearray()
        self._entries: list[tuple[int, bytes, int, int]] = []
        self.size = 0

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, blob_type: int, blob_id: bytes, sealed: bytes, raw_length: int) -> None:
        self._buf += sealed
        self._entries.append((blob_type, blob_id, len(sealed), raw_length))
        self.size += len(sealed)

    def finish(self) -> tuple[str, bytearray, list[BlobRef]]:
        """(pack id, pack bytes, the refs of its blobs); the builder is empty afterwards."""
        header = b"".join(ENTRY.pack(t, i, n, r) for t, i, n, r in self._entries)
        sealed_header = self._key.seal(header, b"pack-header")
        data = self._buf
        data += sealed_header
        data += TRAILER.pack(len(sealed_header))
        pack_id = hashlib.sha256(data).hexdigest()
        refs, offset = [], 0
        for t, i, n, r in self._entries:
            refs.append(BlobRef(i, t, pack_id, offset, n, r))
            offset += n
        self._buf, self._entries, self.size = bytearray(), [], 0
        return pack_id, data, refs


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
