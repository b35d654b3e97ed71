"""restic's index (which pack holds each blob, where) and pack headers (the same facts, inside the pack).

Index files: `{"packs": [{"id", "blobs": [{"id", "type", "offset", "length", "uncompressed_length"?}]}]}`.
A pack ends with its sealed header and the header's length (4 bytes, little-endian); each header entry
is a type byte, the stored length, for compressed blobs the plaintext length, and the blob's SHA-256.
Every length is checked against restic's bounds before anything is allocated for it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from providers.storage import Storage
from stashplan.repository.formats import ResticLayout
from stashplan.repository.restic.crypto import OVERHEAD, ResticCorrupt, ResticKey
from stashplan.repository.restic.files import fetch_all, load_unpacked

DATA = "data"
TREE = "tree"
_HEADER_TYPES = {0: (DATA, False), 1: (TREE, False), 2: (DATA, True), 3: (TREE, True)}
_PLAIN_ENTRY = struct.Struct("<BI32s")
_PACKED_ENTRY = struct.Struct("<BII32s")
MAX_DATA_BLOB = 8 * 1024 * 1024  # restic's chunker never cuts a larger chunk
MAX_TREE_BLOB = 128 * 1024 * 1024  # restic's largest pack size; a tree (one directory's JSON) is far smaller
MAX_PACK = 1 << 32  # restic's pack header stores lengths in 32 bits


def max_plain(kind: str) -> int:
    """The largest plaintext a blob of `kind` may have."""
    return MAX_DATA_BLOB if kind == DATA else MAX_TREE_BLOB


def max_stored(raw_length: int) -> int:
    """The largest stored (sealed) length of a blob of `raw_length` plaintext bytes (zstd's worst case)."""
    return raw_length + (raw_length >> 7) + 1024 + OVERHEAD


def check_bounds(loc: BlobLoc, what: str) -> BlobLoc:
    """`loc`, or ResticCorrupt naming the blob and its pack when a length or offset is out of restic's bounds."""
    label = f"{what}: {loc.kind} blob {loc.id.hex()[:16]} in pack {loc.pack[:8]}"
    if loc.offset < 0 or loc.offset >= MAX_PACK:
        raise ResticCorrupt(f"{label} has offset {loc.offset}, outside any pack")
    if not 0 <= loc.raw_length <= max_plain(loc.kind):
        raise ResticCorrupt(
            f"{label} has length {loc.raw_length}, beyond restic's largest {loc.kind} blob ({max_plain(loc.kind)})"
        )
    if not OVERHEAD <= loc.length <= max_stored(loc.raw_length) or (
        not loc.compressed and loc.length != loc.raw_length + OVERHEAD
    ):
        raise ResticCorrupt(f"{label} has stored length {loc.length}, impossible for {loc.raw_length} bytes")
    return loc


@dataclass(frozen=True, slots=True)
class BlobLoc:
    """Where one blob is stored: pack, offset and stored length; its plaintext length and compression."""

    id: bytes
    kind: str  # DATA | TREE
    pack: str
    offset: int
    length: int  # stored (sealed) bytes
    raw_length: int  # plaintext bytes after decryption and decompression
    compressed: bool


class ResticIndex:
    """Blob id -> location, from every index file of the repository."""

    def __init__(self) -> None:
        self._blobs: dict[bytes, BlobLoc] = {}

    def __len__(self) -> int:
        return len(self._blobs)

    def get(self, blob_id: bytes) -> BlobLoc | None:
        return self._blobs.get(blob_id)

    def add_file(self, doc: object, what: str) -> None:
        """Add the entries of one decoded index file (the current object form or the old bare list)."""
        packs = doc.get("packs") if isinstance(doc, dict) else doc
        if not isinstance(packs, list):
            raise ResticCorrupt(f"{what} is malformed (no packs list)")
        try:
            for pack in packs:
                pack_id = str(pack["id"])
                for b in pack["blobs"] or ():
                    raw = b.get("uncompressed_length")
                    length = int(b["length"])
                    blob_id = bytes.fromhex(b["id"])
                    kind = str(b["type"])
                    if kind not in (DATA, TREE) or len(blob_id) != 32:
                        raise ValueError(f"blob {b['id']} has type {kind!r}")
                    loc = BlobLoc(
                        blob_id,
                        kind,
                        pack_id,
                        int(b["offset"]),
                        length,
                        int(raw) if raw is not None else length - OVERHEAD,
                        raw is not None,
                    )
                    self._blobs.setdefault(blob_id, check_bounds(loc, what))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ResticCorrupt(f"{what} is malformed: {exc}") from None

    def packs(self) -> dict[str, list[BlobLoc]]:
        """Every indexed pack with its blobs in offset order."""
        out: dict[str, list[BlobLoc]] = {}
        for loc in self._blobs.values():
            out.setdefault(loc.pack, []).append(loc)
        for locs in out.values():
            locs.sort(key=lambda b: b.offset)
        return out

    def __iter__(self) -> Iterator[BlobLoc]:
        return iter(self._blobs.values())


def index_names(storage: Storage, layout: ResticLayout) -> list[str]:
    return sorted(i.name for i in storage.list(layout.index))


def load_index(
    storage: Storage, key: ResticKey, layout: ResticLayout, errors: list[str] | None = None
) -> ResticIndex:
    """The whole index; a damaged index file raises, or is recorded in `errors` when a list is given."""
    def fetch(name: str) -> tuple[str, object]:
        what = f"index file {name.rsplit('/', 1)[-1][:8]}"
        try:
            return what, load_unpacked(storage, key, name, what)
        except ResticCorrupt as exc:
            if errors is None:
                raise
            return what, exc

    index = ResticIndex()
    for what, doc in fetch_all(fetch, index_names(storage, layout)):
        try:
            if isinstance(doc, ResticCorrupt):
                raise doc
            index.add_file(doc, what)
        except ResticCorrupt as exc:
            if errors is None:
                raise
            errors.append(str(exc))
    return index


def parse_header(key: ResticKey, pack_id: str, pack: bytes | memoryview) -> list[BlobLoc]:
    """The blobs a whole pack's own header lists, with offsets; ResticCorrupt if it is damaged."""
    what = f"pack {pack_id[:8]}"
    if len(pack) < 4 + OVERHEAD:
        raise ResticCorrupt(f"{what} is truncated ({len(pack)} bytes)")
    (header_len,) = struct.unpack("<I", pack[-4:])
    if header_len < OVERHEAD or header_len > len(pack) - 4:
        raise ResticCorrupt(f"{what}: header length {header_len} is invalid")
    header = key.open(pack[len(pack) - 4 - header_len : len(pack) - 4], what=f"{what} header")
    entries = [check_bounds(loc, what) for loc in _entries(header, pack_id, what)]
    if entries and entries[-1].offset + entries[-1].length > len(pack) - 4 - header_len:
        raise ResticCorrupt(f"{what}: header lists blobs beyond the pack's data ({len(pack)} bytes)")
    return entries


def _entries(header: bytes, pack_id: str, what: str) -> Iterable[BlobLoc]:
    pos = offset = 0
    while pos < len(header):
        kind_compressed = _HEADER_TYPES.get(header[pos])
        if kind_compressed is None:
            raise ResticCorrupt(f"{what}: header has unknown blob type {header[pos]}")
        kind, compressed = kind_compressed
        entry = _PACKED_ENTRY if compressed else _PLAIN_ENTRY
        if pos + entry.size > len(header):
            raise ResticCorrupt(f"{what}: header is truncated")
        if compressed:
            _t, length, raw, blob_id = _PACKED_ENTRY.unpack_from(header, pos)
        else:
            _t, length, blob_id = _PLAIN_ENTRY.unpack_from(header, pos)
            raw = length - OVERHEAD
        yield BlobLoc(blob_id, kind, pack_id, offset, length, raw, compressed)
        pos += entry.size
        offset += length
