"""The index: blob id -> BlobRef for every blob in the repository, loaded from sealed `index/` files.

An index file is sealed JSON `{"version": 1, "packs": [{"id": pack, "blobs": [[id, type, offset,
length, raw_length], ...]}]}` named by the SHA-256 of its stored bytes. Files only ever add blobs; prune
writes a replacement before deleting the files it supersedes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from providers.storage import Storage
from stashplan.repository.crypto import MasterKey
from stashplan.repository.layout import DOC_VERSION, INDEX
from stashplan.repository.packs import BlobRef

Entry = tuple[str, int, int, int, int]  # pack, offset, length, raw_length, type


class Index:
    """An in-memory map of blob ids to their location (a compact tuple per blob)."""

    def __init__(self) -> None:
        self._blobs: dict[bytes, Entry] = {}
        self.files: list[str] = []

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._blobs

    def add(self, ref: BlobRef) -> None:
        self._blobs[ref.id] = (ref.pack, ref.offset, ref.length, ref.raw_length, ref.type)

    def get(self, blob_id: bytes) -> BlobRef | None:
        entry = self._blobs.get(blob_id)
        if entry is None:
            return None
        return BlobRef(blob_id, entry[4], entry[0], entry[1], entry[2], entry[3])

    def refs(self) -> Iterator[BlobRef]:
        for blob_id, e in self._blobs.items():
            yield BlobRef(blob_id, e[4], e[0], e[1], e[2], e[3])

    def packs(self) -> dict[str, list[BlobRef]]:
        out: dict[str, list[BlobRef]] = {}
        for ref in self.refs():
            out.setdefault(ref.pack, []).append(ref)
        return out


def encode(refs: Iterable[BlobRef]) -> dict:
    packs: dict[str, list[list]] = {}
    for r in refs:
        packs.setdefault(r.pack, []).append([r.id.hex(), r.type, r.offset, r.length, r.raw_length])
    return {"version": DOC_VERSION, "packs": [{"id": p, "blobs": b} for p, b in packs.items()]}


def decode(doc: dict) -> Iterator[BlobRef]:
    for pack in doc.get("packs", []):
        pack_id = str(pack["id"])  # one string shared by all blobs of the pack
        for blob_hex, btype, offset, length, raw in pack["blobs"]:
            yield BlobRef(bytes.fromhex(blob_hex), int(btype), pack_id, int(offset), int(length), int(raw))


def write_index(storage: Storage, key: MasterKey, refs: Iterable[BlobRef]) -> str:
    """Store one index file holding `refs`; returns its object name."""
    data = key.seal_json(encode(refs))
    name = INDEX + hashlib.sha256(data).hexdigest()
    storage.put(name, data)
    return name


def load_index(storage: Storage, key: MasterKey) -> Index:
    """Every index file of the repository merged; CorruptData naming a damaged file."""
    index = Index()
    for info in sorted(storage.list(INDEX), key=lambda i: i.name):
        doc = key.open_json(storage.get(info.name), what=f"index file {info.name}")
        for ref in decode(doc):
            index.add(ref)
        index.files.append(info.name)
    return index


def load_ids(storage: Storage, key: MasterKey) -> set[bytes]:
    """The ids of every indexed blob (all a backup needs to deduplicate), without their locations."""
    ids: set[bytes] = set()
    for info in storage.list(INDEX):
        doc = key.open_json(storage.get(info.name), what=f"index file {info.name}")
        for pack in doc.get("packs", []):
            ids.update(bytes.fromhex(blob[0]) for blob in pack["blobs"])
    return ids
