"""The index: blob id -> BlobRef for every blob in the repository, loaded from sealed `index/` files.

An index file is sealed JSON `{"version": 1, "packs": [{"id": pack, "size": bytes, "blobs": [[id, type,
offset, length, raw_length], ...]}]}` named by the SHA-256 of its stored bytes (checked on read).
Files only ever add blobs; prune writes a replacement before deleting the files it supersedes. An
unreadable file is skipped with a warning naming it and listed in `Index.unreadable`. Packs marked damaged
(`damage.py`) count as unusable wherever the stored packs are given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import MasterKey
from stashplan.repository.damage import usable
from stashplan.repository.layout import DOC_VERSION, INDEX
from stashplan.repository.packs import BlobRef

Entry = tuple[str, int, int, int, int]  # pack, offset, length, raw_length, type
Warn = Callable[[str], None]


def _ignore(_message: str) -> None:
    return None


class Index:
    """An in-memory map of blob ids to their location (a compact tuple per blob).

    When a blob is indexed in several packs, a pack known to be missing or short (`bad`) never
    displaces a good one, so a blob stored again after its pack was lost is found in its new pack.
    """

    def __init__(self, bad: set[str] | None = None) -> None:
        self._blobs: dict[bytes, Entry] = {}
        self.bad: set[str] = bad or set()
        self.files: list[str] = []
        self.unreadable: list[str] = []
        self.pack_sizes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, blob_id: object) -> bool:
        return blob_id in self._blobs

    def add(self, ref: BlobRef) -> None:
        old = self._blobs.get(ref.id)
        if old is not None and ref.pack in self.bad and old[0] not in self.bad:
            return
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


def encode(refs: Iterable[BlobRef], sizes: Mapping[str, int] | None = None) -> dict:
    packs: dict[str, list[list]] = {}
    for r in refs:
        packs.setdefault(r.pack, []).append([r.id.hex(), r.type, r.offset, r.length, r.raw_length])
    sizes = sizes or {}
    return {
        "version": DOC_VERSION,
        "packs": [
            {"id": p, "blobs": b, **({"size": sizes[p]} if p in sizes else {})} for p, b in packs.items()
        ],
    }


def decode(doc: dict) -> Iterator[BlobRef]:
    for pack in doc.get("packs", []):
        pack_id = str(pack["id"])  # one string shared by all blobs of the pack
        for blob_hex, btype, offset, length, raw in pack["blobs"]:
            yield BlobRef(bytes.fromhex(blob_hex), int(btype), pack_id, int(offset), int(length), int(raw))


def pack_usable(doc_pack: dict, stored: Mapping[str, int]) -> bool:
    """True when an index entry's pack is stored with the length the index records (or, for entries
    written before lengths were recorded, long enough to hold every blob and a header)."""
    size = stored.get(str(doc_pack["id"]))
    if size is None:
        return False
    if "size" in doc_pack:
        return size == int(doc_pack["size"])
    return all(size > int(b[2]) + int(b[3]) for b in doc_pack["blobs"])


def write_index(
    storage: Storage, key: MasterKey, refs: Iterable[BlobRef], sizes: Mapping[str, int] | None = None
) -> str:
    """Store one index file holding `refs` (and the pack lengths in `sizes`); returns its object name."""
    data = key.seal_json(encode(refs, sizes), "index")
    name = INDEX + key.object_id(data)
    storage.put(name, data)
    return name


def read_index_file(storage: Storage, key: MasterKey, name: str) -> dict:
    """One index file's document, checked against its name; RepositoryError (CorruptData) if damaged."""
    data = storage.get(name)
    what = f"index file {name}"
    key.verify_name(data, name[len(INDEX) :], what)
    doc = key.open_json(data, "index", what)
    try:
        for pack in doc.get("packs", []):
            str(pack["id"])
            for blob in pack["blobs"]:
                bytes.fromhex(blob[0]), int(blob[1]), int(blob[2]), int(blob[3]), int(blob[4])
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise RepositoryError(f"{what} is malformed: {exc}") from exc
    return doc


def _readable(
    storage: Storage, key: MasterKey, warn: Warn, unreadable: list[str]
) -> Iterator[tuple[str, dict]]:
    for info in sorted(storage.list(INDEX), key=lambda i: i.name):
        try:
            yield info.name, read_index_file(storage, key, info.name)
        except ObjectNotFound:
            continue  # deleted by a prune since the listing
        except RepositoryError as exc:
            unreadable.append(info.name)
            warn(f"{exc}; skipped (`stashplan repo repair index` rebuilds the index)")


def load_index(
    storage: Storage, key: MasterKey, *, stored: Mapping[str, int] | None = None, warn: Warn = _ignore
) -> Index:
    """Every readable index file merged. With `stored` (pack id -> size, one listing of `data/`),
    entries whose pack is missing, has the wrong length or is marked damaged never displace a usable copy."""
    index = Index()
    if stored is not None:
        stored = usable(storage, stored)
    for name, doc in _readable(storage, key, warn, index.unreadable):
        for pack in doc.get("packs", []):
            if stored is not None and not pack_usable(pack, stored):
                index.bad.add(str(pack["id"]))
            if "size" in pack:
                index.pack_sizes[str(pack["id"])] = int(pack["size"])
        for ref in decode(doc):
            index.add(ref)
        index.files.append(name)
    return index


def load_ids(
    storage: Storage, key: MasterKey, stored: Mapping[str, int], *, warn: Warn = _ignore
) -> set[bytes]:
    """The ids of every blob indexed in a pack that `stored` shows with its indexed length: what a
    backup may deduplicate against. Blobs of missing, short, marked damaged or unreadably indexed packs are
    stored again."""
    ids: set[bytes] = set()
    stored = usable(storage, stored)
    for _name, doc in _readable(storage, key, warn, []):
        for pack in doc.get("packs", []):
            if pack_usable(pack, stored):
                ids.update(bytes.fromhex(blob[0]) for blob in pack["blobs"])
    return ids
