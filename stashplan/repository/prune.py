"""`prune`: delete what no snapshot references. Unused packs go, packs no index knows (interrupted
backups) go, and partly used packs are repacked while the unused bytes exceed 5% of the used ones.
New packs and index are stored before anything is deleted, so an interrupted prune loses nothing.
Refuses to run when a pack holding used data is missing or damaged, or when an index file or snapshot
cannot be read (it cannot know what is used). Removes leftovers of killed writes. Needs the exclusive lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import CorruptData, MasterKey
from stashplan.repository.index import Index, load_index, write_index
from stashplan.repository.layout import DATA, Params, pack_id_of, pack_name
from stashplan.repository.packs import BlobRef
from stashplan.repository.restore import BlobReader
from stashplan.repository.snapshots import list_ids, load_manifest
from stashplan.repository.writer import INDEX_FLUSH, PackWriter

MAX_UNUSED = 0.05
LEFTOVER_AGE = 60.0  # seconds: a partial write older than this under the exclusive lock is a leftover


@dataclass(frozen=True)
class PruneResult:
    packs_deleted: int
    packs_repacked: int
    blobs_removed: int
    bytes_freed: int
    leftovers_removed: int = 0


def used_blobs(storage: Storage, key: MasterKey, index: Index) -> set[bytes]:
    """Ids of every blob a snapshot references (content lists and chunks); fails on damaged snapshots."""
    used: set[bytes] = set()
    for sid in list_ids(storage):
        try:
            manifest = load_manifest(storage, key, sid)
        except ObjectNotFound:
            continue
        except RepositoryError as exc:
            raise RepositoryError(
                f"prune: {exc}; nothing deleted (`stashplan repo repair snapshots` removes it)"
            ) from None
        reader = BlobReader(storage, key, index, f"prune: snapshot {sid[:8]}")
        for list_id in manifest.content:
            used.add(list_id)
            ids = reader.load(list_id, "content list")
            used.update(ids[pos : pos + 32] for pos in range(0, len(ids), 32))
    return used


def run_prune(
    storage: Storage,
    key: MasterKey,
    params: Params,
    *,
    max_unused: float = MAX_UNUSED,
    warn: Callable[[str], None] | None = None,
) -> PruneResult:
    """Delete unused packs and orphans; repack the partly used packs with the most unused bytes until
    the unused bytes left are at most `max_unused` of the used ones (restic's `--max-unused 5%`)."""
    leftovers = len(storage.remove_leftovers(LEFTOVER_AGE))
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}
    index = load_index(storage, key, stored=stored, warn=warn or (lambda _m: None))
    if index.unreadable:
        raise RepositoryError(
            f"prune: index file {index.unreadable[0]} cannot be read, so what is used is unknown; nothing "
            "deleted (`stashplan repo repair index` rebuilds the index)"
        )
    used = used_blobs(storage, key, index)
    keep_refs: list[BlobRef] = []
    delete: list[str] = []
    partial: list[tuple[int, str, list[BlobRef], list[BlobRef]]] = []  # unused bytes, pack, live, all
    used_bytes = 0
    for pack, refs in index.packs().items():
        live = [r for r in refs if r.id in used]
        if pack not in stored or pack in index.bad:
            state = "missing" if pack not in stored else "not of its indexed length"
            if live:
                raise RepositoryError(
                    f"prune: pack {pack} is {state} but holds {len(live)} blobs that snapshots use; nothing "
                    "deleted (run `stashplan repo check`, then `repo repair packs` and `repo repair snapshots`)"
                )
            if pack in stored:
                delete.append(pack)
            continue
        used_bytes += sum(r.length for r in live)
        if not live:
            delete.append(pack)
        elif len(live) < len(refs):
            partial.append((sum(r.length for r in refs) - sum(r.length for r in live), pack, live, refs))
        else:
            keep_refs.extend(refs)
    unused_left = sum(p[0] for p in partial)
    repack: dict[str, list[BlobRef]] = {}
    for unused, pack, live, refs in sorted(partial, key=lambda p: p[0], reverse=True):
        if unused_left > max_unused * used_bytes:
            repack[pack] = live
            delete.append(pack)
            unused_left -= unused
        else:
            keep_refs.extend(refs)  # unused blobs stay indexed, so later prunes still count them
    orphans = sorted(set(stored) - set(index.packs()))
    delete.extend(orphans)
    if not delete:
        return PruneResult(0, 0, 0, 0, leftovers)
    removed_blobs = len(index) - len(keep_refs) - sum(len(live) for live in repack.values())

    writer = PackWriter(storage, key, params.pack_size, set())
    try:
        for pack, live in repack.items():
            data = storage.get(pack_name(pack))
            try:
                key.verify_name(data, pack, f"pack {pack}")
            except CorruptData as exc:
                raise RepositoryError(
                    f"prune: {exc}; nothing deleted (`stashplan repo repair packs` salvages it)"
                ) from None
            for ref in live:
                writer.add(ref.type, ref.id, data[ref.offset : ref.offset + ref.length], ref.raw_length)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    for start in range(0, len(keep_refs), INDEX_FLUSH):
        part = keep_refs[start : start + INDEX_FLUSH]
        write_index(storage, key, part, {r.pack: stored[r.pack] for r in part})
    for name in index.files:
        storage.delete(name)
    freed = 0
    for pack in delete:
        try:
            storage.delete(pack_name(pack))
            freed += stored.get(pack, 0)
        except ObjectNotFound:
            continue
    return PruneResult(
        len(delete), len(repack), removed_blobs, max(0, freed - writer.uploaded_bytes), leftovers
    )
