"""`repair`: rebuild the index from pack headers, salvage damaged packs, drop snapshots whose data is gone.

Each writes what replaces before deleting what is replaced, so an interrupted repair loses nothing
and can be run again. All take the exclusive lock (the caller's job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import zstandard

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import CorruptData, MasterKey
from stashplan.repository.damage import clear_markers
from stashplan.repository.index import Index, load_index, write_index
from stashplan.repository.layout import DATA, INDEX, SNAPSHOTS, Params, pack_id_of, pack_name
from stashplan.repository.packs import ENTRY, TRAILER, BlobRef, read_header
from stashplan.repository.restore import BlobReader
from stashplan.repository.snapshots import list_ids, load_manifest
from stashplan.repository.writer import INDEX_FLUSH, PackWriter

Warn = Callable[[str], None]


@dataclass(frozen=True)
class RepairResult:
    changed: list[str] = field(default_factory=list)  # what was rewritten, removed or salvaged
    problems: list[str] = field(default_factory=list)  # what could not be saved


def _stored(storage: Storage) -> dict[str, int]:
    return {pack_id_of(i.name): i.size for i in storage.list(DATA)}


def header_refs(storage: Storage, key: MasterKey, pack: str, size: int) -> list[BlobRef]:
    """A pack's blob refs from its own header, read with two ranged reads; CorruptData if damaged."""
    what = f"pack {pack}"
    if size < TRAILER.size:
        raise CorruptData(f"{what} is corrupt (truncated)")
    name = pack_name(pack)
    (hlen,) = TRAILER.unpack(storage.get(name, size - TRAILER.size, TRAILER.size))
    start = size - TRAILER.size - hlen
    if start < 0:
        raise CorruptData(f"{what} is corrupt (bad header length)")
    header = key.open(storage.get(name, start, hlen), b"pack-header", what=f"{what} header")
    if len(header) % ENTRY.size:
        raise CorruptData(f"{what} is corrupt (bad header size)")
    refs, offset = [], 0
    for t, i, n, r in ENTRY.iter_unpack(header):
        refs.append(BlobRef(i, t, pack, offset, n, r))
        offset += n
    if offset != start:
        raise CorruptData(f"{what} is corrupt (blobs do not fill the pack)")
    return refs


def _replace_index(
    storage: Storage, key: MasterKey, refs: Iterable[BlobRef], sizes: dict[str, int], old: Iterable[str]
) -> list[str]:
    """Write `refs` as new index files, then delete the `old` ones; the new names."""
    refs = list(refs)
    written = []
    for start in range(0, len(refs), INDEX_FLUSH):
        part = refs[start : start + INDEX_FLUSH]
        written.append(
            write_index(storage, key, part, {r.pack: sizes[r.pack] for r in part if r.pack in sizes})
        )
    for name in old:
        if name in written:
            continue
        try:
            storage.delete(name)
        except ObjectNotFound:
            continue
    return written


def repair_index(storage: Storage, key: MasterKey) -> RepairResult:
    """A new index built from every pack's header, replacing every index file."""
    stored = _stored(storage)
    refs: list[BlobRef] = []
    problems = []
    for pack, size in sorted(stored.items()):
        try:
            refs.extend(header_refs(storage, key, pack, size))
        except (CorruptData, ObjectNotFound) as exc:
            problems.append(f"{exc}: its blobs are not indexed (`stashplan repo repair packs` salvages it)")
    old = [i.name for i in storage.list(INDEX)]
    written = _replace_index(storage, key, refs, stored, old)
    changed = [
        f"index rebuilt from {len(stored) - len(problems)} packs: {len(refs)} blobs in {len(written)} files"
    ]
    changed += [f"removed old index file {name}" for name in old if name not in written]
    return RepairResult(changed, problems)


def _salvage(
    storage: Storage, key: MasterKey, pack: str, refs: list[BlobRef], writer: PackWriter
) -> tuple[int, int]:
    """Copy the blobs of `pack` that still open and match their ids into `writer`; (saved, lost)."""
    try:
        data = storage.get(pack_name(pack))
    except ObjectNotFound:
        return 0, len(refs)
    try:  # the pack's own header may know blobs the index lost
        known = {r.id for r in refs}
        refs = refs + [r for r in read_header(key, pack, data) if r.id not in known]
    except CorruptData:
        pass
    dec = zstandard.ZstdDecompressor()
    saved = 0
    for ref in refs:
        sealed = bytes(memoryview(data)[ref.offset : ref.offset + ref.length])
        try:
            plain = dec.decompress(key.open(sealed, ref.id), max_output_size=ref.raw_length)
        except (CorruptData, zstandard.ZstdError):
            continue
        if len(plain) == ref.raw_length and key.chunk_id(plain) == ref.id:
            writer.add(ref.type, ref.id, sealed, ref.raw_length)
            saved += 1
    return saved, len(refs) - saved


def damaged_packs(storage: Storage, key: MasterKey, index: Index, stored: dict[str, int]) -> list[str]:
    """Packs that are missing, of the wrong length, or whose bytes do not match their name."""
    out = sorted(p for p in set(index.packs()) | index.bad if p not in stored or p in index.bad)
    for pack in sorted(stored):
        if pack in out:
            continue
        try:
            key.verify_name(storage.get(pack_name(pack)), pack, f"pack {pack}")
        except CorruptData:
            out.append(pack)
        except ObjectNotFound:
            continue
    return out


def repair_packs(
    storage: Storage, key: MasterKey, params: Params, packs: list[str] | None, warn: Warn
) -> RepairResult:
    """Salvage the readable blobs of damaged packs (`packs`, or every pack that fails its checksum)
    into new packs, drop the rest from the index so the next backup stores them again, delete them."""
    stored = _stored(storage)
    index = load_index(storage, key, stored=stored, warn=warn)
    if index.unreadable:
        raise RepositoryError(
            f"repair packs: index file {index.unreadable[0]} cannot be read; run `stashplan repo repair index` first"
        )
    targets = sorted(set(packs)) if packs else damaged_packs(storage, key, index, stored)
    by_pack: dict[str, list[BlobRef]] = {}
    for ref in index.refs():
        by_pack.setdefault(ref.pack, []).append(ref)
    writer = PackWriter(storage, key, params.pack_size, set())
    changed, problems = [], []
    try:
        for pack in targets:
            saved, lost = _salvage(
                storage, key, pack, sorted(by_pack.get(pack, []), key=lambda r: r.offset), writer
            )
            changed.append(f"pack {pack}: {saved} blobs salvaged, {lost} lost")
            if lost:
                problems.append(
                    f"pack {pack}: {lost} blobs lost (the next backup of the same data stores them again)"
                )
        writer.close()
    except BaseException:
        writer.abort()
        raise
    if not targets:
        return RepairResult(["no damaged packs"], [])
    stored = _stored(storage)
    index = load_index(storage, key, stored=stored, warn=warn)
    index.bad.update(targets)
    rebuilt = Index(set(targets))
    for ref in index.refs():
        if ref.pack not in targets:
            rebuilt.add(ref)
    _replace_index(storage, key, rebuilt.refs(), stored, index.files)
    for pack in targets:
        try:
            storage.delete(pack_name(pack))
        except ObjectNotFound:
            continue
        changed.append(f"deleted pack {pack}")
    changed += [f"removed marker damaged/{pack}" for pack in clear_markers(storage, _stored(storage))]
    return RepairResult(changed, problems)


def repair_snapshots(storage: Storage, key: MasterKey, *, dry_run: bool, warn: Warn) -> RepairResult:
    """Remove snapshots that cannot be read or whose data is no longer all in the repository."""
    stored = _stored(storage)
    index = load_index(storage, key, stored=stored, warn=warn)
    if index.unreadable:
        raise RepositoryError(
            f"repair snapshots: index file {index.unreadable[0]} cannot be read; run `stashplan repo repair index` first"
        )
    changed: list[str] = []
    problems: list[str] = []
    verb = "would remove" if dry_run else "removed"
    for sid in list_ids(storage):
        why = _broken(storage, key, index, stored, sid)
        if why is None:
            continue
        if not dry_run:
            try:
                storage.delete(SNAPSHOTS + sid)
            except ObjectNotFound:
                continue
        changed.append(f"{verb} snapshot {sid[:8]}: {why}")
    return RepairResult(changed, problems)


def _broken(storage: Storage, key: MasterKey, index: Index, stored: dict[str, int], sid: str) -> str | None:
    """Why snapshot `sid` cannot be restored, or None when all its data is present."""
    try:
        manifest = load_manifest(storage, key, sid)
    except ObjectNotFound:
        return None
    except RepositoryError as exc:
        return str(exc)
    reader = BlobReader(storage, key, index, f"snapshot {sid[:8]}")
    count = 0
    for list_id in manifest.content:
        try:
            ids = reader.load(list_id, "content list")
        except RepositoryError as exc:
            return str(exc)
        for pos in range(0, len(ids), 32):
            count += 1
            ref = index.get(ids[pos : pos + 32])
            if ref is None:
                return f"chunk {ids[pos : pos + 32].hex()[:16]} is in no pack"
            if ref.pack not in stored or ref.pack in index.bad:
                return f"pack {ref.pack} (holding chunk {ref.id.hex()[:16]}) is missing or damaged"
    if count != manifest.chunk_count:
        return f"content lists hold {count} chunks, the manifest says {manifest.chunk_count}"
    return None
