"""`check`: the repository's structure (snapshots -> content lists -> index -> packs) and, with
`read_data` (or a `subset` of packs, restic's `--read-data-subset`), each pack's SHA-256 against its
name and every blob's authenticity, length and keyed id. Reports problems naming the file; never repairs,
but a pack a read finds damaged is marked so (`damage.py`): backups then store its data again.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import zstandard

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import CorruptData, MasterKey
from stashplan.repository.damage import mark_damaged, marked_packs
from stashplan.repository.index import Index, load_index
from stashplan.repository.layout import DATA, pack_id_of, pack_name
from stashplan.repository.named_objects import check_named
from stashplan.repository.packs import BlobRef, read_header
from stashplan.repository.restore import BlobReader
from stashplan.repository.snapshots import list_ids, load_manifest


@dataclass(frozen=True)
class CheckResult:
    errors: list[str]
    warnings: list[str] = field(default_factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs_read: int = 0
    packs_read: int = 0
    damaged_packs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def select_subset(packs: Iterable[str], subset: str, rng: random.Random | None = None) -> list[str]:
    """The packs `subset` names: "n/m" is group n of m (by the pack id's first byte, as restic does),
    "p%" a random p percent (at least one pack when there are any). ValueError for anything else."""
    ordered = sorted(packs)
    group = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", subset)
    if group:
        n, m = int(group[1]), int(group[2])
        if not 1 <= n <= m:
            raise ValueError(f"--read-data-subset {subset!r}: n/m needs 1 <= n <= m")
        return [p for p in ordered if int(p[:2], 16) % m == n - 1]
    percent = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", subset)
    if percent:
        share = float(percent[1])
        if not 0 < share <= 100:
            raise ValueError(f"--read-data-subset {subset!r}: the percentage must be in (0, 100]")
        count = min(len(ordered), max(1, round(len(ordered) * share / 100))) if ordered else 0
        return sorted((rng or random.SystemRandom()).sample(ordered, count))
    raise ValueError(f"--read-data-subset {subset!r}: expected n/m (e.g. 2/5) or a percentage (e.g. 10%)")


def read_and_mark(
    storage: Storage,
    key: MasterKey,
    pack: str,
    refs: list[BlobRef],
    dec: zstandard.ZstdDecompressor,
    *,
    full: bool = True,
) -> tuple[list[str], int]:
    """`read_pack`, marking the pack damaged when its bytes fail (a missing pack is known from listings)."""
    problems, good = read_pack(storage, key, pack, refs, dec, full=full)
    if problems and problems != [_missing(pack)]:
        mark_damaged(storage, key, pack, problems[0])
    return problems, good


def _missing(pack: str) -> str:
    return f"pack {pack} is missing"


def read_pack(
    storage: Storage,
    key: MasterKey,
    pack: str,
    refs: list[BlobRef],
    dec: zstandard.ZstdDecompressor,
    *,
    full: bool = True,
) -> tuple[list[str], int]:
    """Problems found reading one whole pack against its index entries, and the blobs read intact. Without
    `full`, blobs are only authenticated (not decompressed and hashed to their ids): with the pack's hash, that
    proves the stored bytes are those written, at a seventh of the cost (what the rolling read needs)."""
    try:
        data = storage.get(pack_name(pack))
    except ObjectNotFound:
        return [_missing(pack)], 0
    errors = []
    try:
        key.verify_name(data, pack, f"pack {pack}")
    except CorruptData as exc:
        errors.append(str(exc))
    try:
        header = {r.id: r for r in read_header(key, pack, data)}
    except CorruptData as exc:
        errors.append(str(exc))
        header = {}
    good = 0
    for ref in refs:
        label = f"pack {pack}: blob {ref.id.hex()[:16]}"
        if header and header.get(ref.id) != ref:
            errors.append(f"{label} does not match the pack's header")
        try:
            compressed = key.open(memoryview(data)[ref.offset : ref.offset + ref.length], ref.id, what=label)
            if not full:
                good += 1
                continue
            plain = dec.decompress(compressed, max_output_size=ref.raw_length)
        except CorruptData as exc:
            errors.append(str(exc))
            continue
        except zstandard.ZstdError:
            errors.append(f"{label} is corrupt (bad zstd data)")
            continue
        if len(plain) != ref.raw_length or key.chunk_id(plain) != ref.id:
            errors.append(f"{label} is corrupt (content does not match its id)")
            continue
        good += 1
    return errors, good


def _check_snapshots(storage: Storage, key: MasterKey, index: Index, missing: set[str], errors: list[str]) -> int:
    snapshot_ids = list_ids(storage)
    for sid in snapshot_ids:
        try:
            manifest = load_manifest(storage, key, sid)
        except ObjectNotFound:
            continue
        except RepositoryError as exc:
            errors.append(f"{exc} (`stashplan repo repair snapshots` removes it)")
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
                elif ref.pack in missing and ref.pack not in reported:
                    reported.add(ref.pack)
                    errors.append(
                        f"snapshot {sid[:8]}: pack {ref.pack} is missing or damaged (holds chunk {ref.id.hex()[:16]})"
                    )
        if missing_chunks:
            errors.append(f"snapshot {sid[:8]}: {missing_chunks} chunks are not in the index")
    return len(snapshot_ids)


def run_check(
    storage: Storage, key: MasterKey, *, read_data: bool = False, subset: str | None = None
) -> CheckResult:
    errors: list[str] = []
    warnings: list[str] = []
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}
    index = load_index(storage, key, stored=stored)
    for name in index.unreadable:
        errors.append(f"index file {name} cannot be read (`stashplan repo repair index` rebuilds the index)")
    indexed = index.packs()
    marked = marked_packs(storage)
    bad = set()
    for pack, refs in sorted(indexed.items()):
        end = max(r.offset + r.length for r in refs)
        expected = index.pack_sizes.get(pack)
        if pack not in stored:
            bad.add(pack)
            errors.append(f"pack {pack} is missing ({len(refs)} blobs in the index live in it)")
        elif pack in marked:
            bad.add(pack)
            errors.append(
                f"pack {pack} was found damaged by a read (marked damaged/{pack}); {len(refs)} blobs in the "
                "index live only in it"
            )
        elif (expected is not None and stored[pack] != expected) or stored[pack] <= end:
            bad.add(pack)
            want = f"{expected} bytes" if expected is not None else f"more than {end} bytes"
            errors.append(f"pack {pack} is damaged (truncated): {stored[pack]} bytes stored, {want} indexed")
    for pack in sorted(index.bad - set(indexed)):
        warnings.append(
            f"pack {pack} is missing or damaged, but every blob it held is stored again elsewhere; prune removes it"
        )
    for pack in sorted(set(stored) - set(indexed) - index.bad):
        warnings.append(f"pack {pack} is not in any index (left by an interrupted backup?); prune removes it")
    snapshots = _check_snapshots(storage, key, index, bad, errors)

    to_read: list[str] = []
    if read_data:
        to_read = sorted(p for p in indexed if p in stored)
    elif subset is not None:
        to_read = select_subset((p for p in indexed if p in stored), subset)
    blobs_read = 0
    damaged = sorted(bad)
    dec = zstandard.ZstdDecompressor()
    for pack in to_read:
        problems, good = read_and_mark(storage, key, pack, indexed[pack], dec)
        blobs_read += good
        errors.extend(problems)
        if problems and pack not in damaged:
            damaged.append(pack)
    # Named objects (archived WAL under wal/, written by `stashplan pg`) are not packs and no snapshot lists
    # them: they are never orphans. With --read-data (or a subset) each one is opened and its content checked.
    _named, named_errors = check_named(storage, key, read_data=read_data or subset is not None)
    errors.extend(named_errors)
    if damaged:
        errors.append(
            f"{len(damaged)} damaged or missing packs: {', '.join(damaged)} "
            "(`stashplan repo repair packs` salvages them, then `repo repair snapshots`)"
        )
    return CheckResult(errors, warnings, snapshots, len(stored), blobs_read, len(to_read), damaged)
