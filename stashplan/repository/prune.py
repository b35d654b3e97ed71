"""`prune`: delete what no snapshot references. Unused packs go, partly used packs are repacked, and
packs no index knows (interrupted backups) are removed. New packs and index are stored before anything
is deleted, so an interrupted prune loses nothing. Needs the exclusive lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from providers.storage import ObjectNotFound, Storage
from stashplan.repository.crypto import MasterKey
from stashplan.repository.index import Index, load_index, write_index
from stashplan.repository.layout import DATA, Params, pack_id_of, pack_name
from stashplan.repository.packs import BlobRef
from stashplan.repository.restore import BlobReader
from stashplan.repository.snapshots import list_ids, load_manifest
from stashplan.repository.writer import INDEX_FLUSH, PackWriter


@dataclass(frozen=True)
class PruneResult:
    packs_deleted: int
    packs_repacked: int
    blobs_removed: int
    bytes_freed: int


def used_blobs(storage: Storage, key: MasterKey, index: Index) -> set[bytes]:
    """Ids of every blob a snapshot references (content lists and chunks); fails on damaged snapshots."""
    used: set[bytes] = set()
    for sid in list_ids(storage):
        manifest = load_manifest(storage, key, sid)
        reader = BlobReader(storage, key, index, f"prune: snapshot {sid[:8]}")
        for list_id in manifest.content:
            used.add(list_id)
            ids = reader.load(list_id, "content list")
            used.update(ids[pos : pos + 32] for pos in range(0, len(ids), 32))
    return used


def run_prune(storage: Storage, key: MasterKey, params: Params) -> PruneResult:
    index = load_index(storage, key)
    used = used_blobs(storage, key, index)
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}
    keep_refs: list[BlobRef] = []
    delete: list[str] = []
    repack: dict[str, list[BlobRef]] = {}
    removed_blobs = 0
    for pack, refs in index.packs().items():
        live = [r for r in refs if r.id in used]
        removed_blobs += len(refs) - len(live)
        if pack not in stored:
            continue
        if not live:
            delete.append(pack)
        elif len(live) < len(refs):
            repack[pack] = live
            delete.append(pack)
        else:
            keep_refs.extend(live)
    orphans = sorted(set(stored) - set(index.packs()))
    delete.extend(orphans)
    if not delete:
        return PruneResult(0, 0, 0, 0)

    writer = PackWriter(storage, key, params.pack_size, set())
    try:
        for pack, live in repack.items():
            data = storage.get(pack_name(pack))
            for ref in live:
                writer.add(ref.type, ref.id, data[ref.offset : ref.offset + ref.length], ref.raw_length)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    for start in range(0, len(keep_refs), INDEX_FLUSH):
        write_index(storage, key, keep_refs[start : start + INDEX_FLUSH])
    for name in index.files:
        storage.delete(name)
    freed = 0
    for pack in delete:
        try:
            storage.delete(pack_name(pack))
            freed += stored.get(pack, 0)
        except ObjectNotFound:
            continue
    return PruneResult(len(delete), len(repack), removed_blobs, max(0, freed - writer.uploaded_bytes))
