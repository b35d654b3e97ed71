"""`check`: the repository's structure (snapshots -> content lists -> index -> packs) and, with
`read_data`, every blob's authenticity, length and keyed id. Reports problems; never repairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import zstandard

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import CorruptData, MasterKey
from stashplan.repository.index import Index, decode
from stashplan.repository.layout import DATA, INDEX, pack_id_of, pack_name
from stashplan.repository.packs import read_header
from stashplan.repository.restore import BlobReader
from stashplan.repository.snapshots import list_ids, load_manifest


@dataclass(frozen=True)
class CheckResult:
    errors: list[str]
    warnings: list[str] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _load_index(storage: Storage, key: MasterKey, errors: list[str]) -> Index:
    index = Index()
    for info in sorted(storage.list(INDEX), key=lambda i: i.name):
        try:
            for ref in decode(key.open_json(storage.get(info.name), what=f"index file {info.name}")):
                index.add(ref)
        except (CorruptData, ObjectNotFound, KeyError, ValueError, TypeError) as exc:
            errors.append(f"index file {info.name}: {exc}")
    return index


def run_check(storage: Storage, key: MasterKey, *, read_data: bool = False) -> CheckResult:
    errors: list[str] = []
    warnings: list[str] = []
    index = _load_index(storage, key, errors)
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}
    indexed = index.packs()
    missing_packs = set()
    for pack, refs in sorted(indexed.items()):
        end = max(r.offset + r.length for r in refs)
        if pack not in stored:
            missing_packs.add(pack)
            errors.append(f"pack {pack} is missing ({len(refs)} blobs in the index live in it)")
        elif stored[pack] <= end:
            errors.append(f"pack {pack} is truncated ({stored[pack]} bytes, blobs end at {end})")
    for pack in sorted(set(stored) - set(indexed)):
        warnings.append(f"pack {pack} is not in any index (left by an interrupted backup?); prune removes it")

    snapshot_ids = list_ids(storage)
    for sid in snapshot_ids:
        try:
            manifest = load_manifest(storage, key, sid)
        except RepositoryError as exc:
            errors.append(f"snapshot {sid[:8]}: {exc}")
            continue
        reader = BlobReader(storage, key, index, f"snapshot {sid[:8]}")
        reported: set[str] = set()
        missing_chunks = 0
        for list_id in manifest.content:
            try:
                ids = reader.load(list_id, "content list")
            except RepositoryError as exc:
                errors.append(str(exc))
                continue
            for pos in range(0, len(ids), 32):
                ref = index.get(ids[pos : pos + 32])
                if ref is None:
                    missing_chunks += 1
                elif ref.pack in missing_packs and ref.pack not in reported:
                    reported.add(ref.pack)
                    errors.append(
                        f"snapshot {sid[:8]}: pack {ref.pack} is missing (holds chunk {ref.id.hex()[:16]})"
                    )
        if missing_chunks:
            errors.append(f"snapshot {sid[:8]}: {missing_chunks} chunks are not in the index")

    blobs_read = 0
    if read_data:
        dec = zstandard.ZstdDecompressor()
        for pack, refs in sorted(indexed.items()):
            if pack not in stored:
                continue
            try:
                data = storage.get(pack_name(pack))
            except ObjectNotFound:
                errors.append(f"pack {pack} is missing")
                continue
            try:
                header = {r.id: r for r in read_header(key, pack, data)}
            except CorruptData as exc:
                errors.append(str(exc))
                header = {}
            for ref in refs:
                label = f"pack {pack}: blob {ref.id.hex()[:16]}"
                if header and header.get(ref.id) != ref:
                    errors.append(f"{label} does not match the pack's header")
                try:
                    plain = dec.decompress(
                        key.open(memoryview(data)[ref.offset : ref.offset + ref.length], ref.id, what=label),
                        max_output_size=ref.raw_length,
                    )
                except CorruptData as exc:
                    errors.append(str(exc))
                    continue
                except zstandard.ZstdError:
                    errors.append(f"{label} is corrupt (bad zstd data)")
                    continue
                blobs_read += 1
                if len(plain) != ref.raw_length or key.chunk_id(plain) != ref.id:
                    errors.append(f"{label} is corrupt (content does not match its id)")
    return CheckResult(errors, warnings, len(snapshot_ids), len(stored), blobs_read)
