"""`check` of a restic repository: index files, packs present, every snapshot's trees and blobs indexed;
with `read_data`, every pack's id (SHA-256 of its bytes), header, and every blob decrypted and verified.
Reports as restic's own check does ("Pack ID does not match, want X, got Y"); never repairs.
"""

from __future__ import annotations

import hashlib

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.check import CheckResult
from stashplan.repository.formats import ResticLayout
from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.crypto import ResticCorrupt, ResticKey
from stashplan.repository.restic.index import ResticIndex, load_index, parse_header
from stashplan.repository.restic.snapshots import load_snapshot, snapshot_ids
from stashplan.repository.restic.trees import load_tree


def _stored_packs(storage: Storage) -> dict[str, int]:
    return {i.name.rsplit("/", 1)[-1]: i.size for i in storage.list("data/")}


def _check_trees(loader: BlobLoader, root: bytes, seen: set[bytes], errors: list[str]) -> None:
    """Every tree reachable from `root` loads, and every blob it references is in the index."""
    pending = [root]
    while pending:
        tree_id = pending.pop()
        if tree_id in seen:
            continue
        seen.add(tree_id)
        try:
            nodes = load_tree(loader, tree_id)
        except RepositoryError as exc:
            errors.append(str(exc))
            continue
        for node in nodes:
            if node.type == "dir":
                if node.subtree is None:
                    errors.append(f"tree {tree_id.hex()[:16]}: dir {node.name} has no subtree")
                else:
                    pending.append(node.subtree)
            missing = [b for b in node.content if loader.index.get(b) is None]
            if missing:
                errors.append(
                    f"tree {tree_id.hex()[:16]}: file {node.name}: blob {missing[0].hex()[:16]} not found in index"
                    + (f" ({len(missing)} blobs missing)" if len(missing) > 1 else "")
                )


def _read_pack(loader: BlobLoader, pack_id: str, index: ResticIndex, errors: list[str]) -> int:
    """Verify one whole pack; returns the number of blobs read intact."""
    try:
        data = loader.storage.get(loader.layout.pack(pack_id))
    except ObjectNotFound:
        errors.append(f"pack {pack_id}: does not exist")
        return 0
    got = hashlib.sha256(data).hexdigest()
    if got != pack_id:
        errors.append(f"pack {pack_id}: Pack ID does not match, want {pack_id}, got {got}")
    try:
        header = parse_header(loader.key, pack_id, data)
    except ResticCorrupt as exc:
        errors.append(f"pack {pack_id}: {exc}")
        return 0
    ok = 0
    view = memoryview(data)
    for loc in header:
        indexed = index.get(loc.id)
        if indexed is not None and indexed.pack == pack_id and indexed != loc:
            errors.append(f"pack {pack_id}: blob {loc.id.hex()[:16]} does not match the index")
        try:
            loader.open(loc, view[loc.offset : loc.offset + loc.length])
            ok += 1
        except RepositoryError as exc:
            errors.append(f"pack {pack_id}: {exc}")
    return ok


def run_check(
    storage: Storage, key: ResticKey, layout: ResticLayout, *, read_data: bool = False
) -> CheckResult:
    errors: list[str] = []
    warnings: list[str] = []
    index = load_index(storage, key, layout, errors)
    stored = _stored_packs(storage)
    indexed = index.packs()
    for pack, blobs in sorted(indexed.items()):
        end = max(b.offset + b.length for b in blobs)
        if pack not in stored:
            errors.append(f"pack {pack}: does not exist ({len(blobs)} indexed blobs live in it)")
        elif stored[pack] < end:
            errors.append(f"pack {pack}: is truncated ({stored[pack]} bytes, indexed blobs end at {end})")
    for pack in sorted(set(stored) - set(indexed)):
        warnings.append(f"pack {pack}: not referenced in any index")

    loader = BlobLoader(storage, key, layout, index, "check")
    seen: set[bytes] = set()
    ids = snapshot_ids(storage, layout)
    for sid in ids:
        try:
            snap = load_snapshot(storage, key, layout, sid)
        except (RepositoryError, ObjectNotFound) as exc:
            errors.append(f"snapshot {sid[:8]}: {exc}")
            continue
        _check_trees(loader, snap.tree, seen, errors)

    blobs_read = 0
    if read_data:
        for pack in sorted(set(indexed) & set(stored)):
            blobs_read += _read_pack(loader, pack, index, errors)
    return CheckResult(errors, warnings, len(ids), len(stored), blobs_read)
