"""`prune`: delete what no snapshot references, in two steps: `plan_prune` (pure) decides, as a `PrunePlan`
value, which packs go and which are repacked; `execute_prune` carries a plan out. Unused packs go, packs no
index knows (interrupted backups) go, and partly used packs are repacked while the unused bytes exceed 5% of
the used ones. New packs and index are stored before anything is deleted, so an interrupted prune loses
nothing. Refuses when a pack holding used data is missing or damaged, or when an index file or snapshot
cannot be read (it cannot know what is used). Execution also removes leftovers of killed writes and needs
the exclusive lock; reading the state and planning write nothing (`repo prune --dry-run`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crosscheck import require_indexed, require_still_listed
from stashplan.repository.crypto import CorruptData, MasterKey
from stashplan.repository.damage import clear_markers, mark_damaged
from stashplan.repository.index import Index, load_index, write_index
from stashplan.repository.layout import DATA, INDEX, Params, pack_id_of, pack_name
from stashplan.repository.packs import BlobRef
from stashplan.repository.restore import BlobReader
from stashplan.repository.snapshots import list_ids, load_manifest
from stashplan.repository.writer import INDEX_FLUSH, PackWriter
from stashplan.units import human_size

MAX_UNUSED = 0.05
LEFTOVER_AGE = 60.0  # seconds: a partial write older than this under the exclusive lock is a leftover


class Why(StrEnum):
    """Why a pack is deleted."""

    UNUSED = "unused"  # no snapshot uses any of its blobs
    REPACKED = "repacked"  # its used blobs are copied into new packs first
    ORPHAN = "orphan"  # no index lists it (an interrupted backup)
    DAMAGED = "damaged"  # indexed, but short or damaged, and no snapshot uses it


@dataclass(frozen=True)
class Repack:
    """A partly used pack: the blobs copied out of it before it is deleted."""

    pack: str
    keep: tuple[BlobRef, ...]
    blobs: int  # blobs the pack holds in all
    unused_bytes: int


@dataclass(frozen=True)
class PrunePlan:
    """What a prune does, decided before anything is written. `delete` is the authority for the executor."""

    delete: tuple[tuple[str, Why], ...]  # packs deleted (repacked ones after their blobs are copied), and why
    repack: tuple[Repack, ...]
    keep: tuple[BlobRef, ...]  # the blobs the new index lists (every pack that stays)
    index_files: tuple[str, ...]  # the index files the new index replaces
    pack_sizes: Mapping[str, int]  # stored bytes of every pack in the storage
    blobs_removed: int
    bytes_freed: int  # stored bytes of the deleted packs less the bytes the repack copies (an estimate)

    @property
    def empty(self) -> bool:
        """Nothing to delete: executing the plan changes nothing (the index is not rewritten)."""
        return not self.delete


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
            try:
                ids = reader.load(list_id, "content list")
            except RepositoryError as exc:  # its pack lost, or an index/ listing short of a file
                raise RepositoryError(f"{exc}; nothing deleted") from None
            used.update(ids[pos : pos + 32] for pos in range(0, len(ids), 32))
    return used


def read_state(
    storage: Storage, key: MasterKey, warn: Callable[[str], None] | None = None
) -> tuple[dict[str, int], Index, set[bytes]]:
    """What prune decides from, read without writing: stored pack sizes, the index, the blobs in use."""
    # Only data/ is listed: named objects (archived WAL under wal/, `named_objects.NAMED_PREFIXES`) are never
    # candidates for deletion here; WAL retention belongs to `stashplan pg` (docs/repository-format.md).
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}
    index = load_index(storage, key, stored=stored, warn=warn or (lambda _m: None))
    if index.unreadable:
        raise RepositoryError(
            f"prune: index file {index.unreadable[0]} cannot be read, so what is used is unknown; nothing "
            "deleted (`stashplan repo repair index` rebuilds the index)"
        )
    used = used_blobs(storage, key, index)
    require_indexed(used, index)  # an index/ listing short of a file would make its packs look unused
    return stored, index, used


def plan_prune(
    stored: Mapping[str, int], index: Index, used: set[bytes], *, max_unused: float = MAX_UNUSED
) -> PrunePlan:
    """Delete unused packs and orphans; repack the partly used packs with the most unused bytes until
    the unused bytes left are at most `max_unused` of the used ones (restic's `--max-unused 5%`)."""
    keep_refs: list[BlobRef] = []
    delete: list[tuple[str, Why]] = []
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
                delete.append((pack, Why.DAMAGED))
            continue
        used_bytes += sum(r.length for r in live)
        if not live:
            delete.append((pack, Why.UNUSED))
        elif len(live) < len(refs):
            partial.append((sum(r.length for r in refs) - sum(r.length for r in live), pack, live, refs))
        else:
            keep_refs.extend(refs)
    unused_left = sum(p[0] for p in partial)
    repack: list[Repack] = []
    for unused, pack, live, refs in sorted(partial, key=lambda p: p[0], reverse=True):
        if unused_left > max_unused * used_bytes:
            repack.append(Repack(pack, tuple(live), len(refs), unused))
            delete.append((pack, Why.REPACKED))
            unused_left -= unused
        else:
            keep_refs.extend(refs)  # unused blobs stay indexed, so later prunes still count them
    delete.extend((pack, Why.ORPHAN) for pack in sorted(set(stored) - set(index.packs())))
    if not delete:
        return PrunePlan((), (), (), (), dict(stored), 0, 0)
    copied = sum(len(r.keep) for r in repack)
    copied_bytes = sum(ref.length for r in repack for ref in r.keep)
    return PrunePlan(
        delete=tuple(delete),
        repack=tuple(repack),
        keep=tuple(keep_refs),
        index_files=tuple(index.files),
        pack_sizes=dict(stored),
        blobs_removed=len(index) - len(keep_refs) - copied,
        bytes_freed=max(0, sum(stored.get(p, 0) for p, _why in delete) - copied_bytes),
    )


def execute_prune(storage: Storage, key: MasterKey, params: Params, plan: PrunePlan) -> PruneResult:
    """Carry out `plan` (under the exclusive lock): copy the repacked blobs into new packs, write the new
    index, then delete the old index files and the planned packs; also removes leftovers of killed writes."""
    require_still_listed(storage, INDEX, plan.index_files)  # the index files the plan was made from
    leftovers = len(storage.remove_leftovers(LEFTOVER_AGE))
    if plan.empty:
        return PruneResult(0, 0, 0, 0, leftovers)
    writer = PackWriter(storage, key, params.pack_size, set())
    try:
        for repack in plan.repack:
            data = storage.get(pack_name(repack.pack))
            try:
                key.verify_name(data, repack.pack, f"pack {repack.pack}")
            except CorruptData as exc:
                mark_damaged(storage, key, repack.pack, str(exc))
                raise RepositoryError(
                    f"prune: {exc}; nothing deleted (`stashplan repo repair packs` salvages it)"
                ) from None
            for ref in repack.keep:
                writer.add(ref.type, ref.id, data[ref.offset : ref.offset + ref.length], ref.raw_length)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    for start in range(0, len(plan.keep), INDEX_FLUSH):
        part = plan.keep[start : start + INDEX_FLUSH]
        write_index(storage, key, part, {r.pack: plan.pack_sizes[r.pack] for r in part})
    for name in plan.index_files:
        storage.delete(name)
    freed = 0
    for pack, _why in plan.delete:
        try:
            storage.delete(pack_name(pack))
            freed += plan.pack_sizes.get(pack, 0)
        except ObjectNotFound:
            continue
    clear_markers(storage, (pack_id_of(i.name) for i in storage.list(DATA)))
    return PruneResult(
        len(plan.delete), len(plan.repack), plan.blobs_removed, max(0, freed - writer.uploaded_bytes), leftovers
    )


def plan_lines(plan: PrunePlan) -> list[str]:
    """The plan as `repo prune --dry-run` prints it: one line per pack deleted (id, size, why), then a summary."""
    repacks = {r.pack: r for r in plan.repack}
    lines = []
    for pack, why in plan.delete:
        line = f"  {pack}  {human_size(plan.pack_sizes.get(pack, 0)):>10}  {why.value}"
        if pack in repacks:
            line += f" (keeps {len(repacks[pack].keep)} of {repacks[pack].blobs} blobs)"
        lines.append(line)
    if plan.empty:
        return ["prune plan: nothing to delete"]
    return [
        "prune plan (nothing written):",
        *lines,
        f"{len(plan.delete)} packs to delete ({len(plan.repack)} repacked), {plan.blobs_removed} blobs removed, "
        f"{len(plan.index_files)} index files replaced, about {human_size(plan.bytes_freed)} freed",
    ]


def run_prune(
    storage: Storage,
    key: MasterKey,
    params: Params,
    *,
    max_unused: float = MAX_UNUSED,
    warn: Callable[[str], None] | None = None,
) -> PruneResult:
    """Plan and execute a prune (under the exclusive lock)."""
    stored, index, used = read_state(storage, key, warn)
    return execute_prune(storage, key, params, plan_prune(stored, index, used, max_unused=max_unused))
