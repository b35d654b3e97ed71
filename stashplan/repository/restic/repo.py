"""`ResticRepository`: a restic repository (Stash's format, versions 1 and 2) opened read-only.

It offers what `Repository` offers for reading — snapshots, restore (one file as a stream), check,
stats — with restic snapshots shown as stashplan `Snapshot` values; every write is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import BinaryIO, NoReturn

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository.backup import normalise_tags
from stashplan.repository.check import CheckResult
from stashplan.repository.formats import CONFIG, ResticLayout, detect, refusal
from stashplan.repository.repo import RepoStats
from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.check import run_check
from stashplan.repository.restic.crypto import ResticCorrupt, ResticKey, ResticWrongPassword, open_key_file
from stashplan.repository.restic.files import decode_unpacked
from stashplan.repository.restic.index import ResticIndex, load_index
from stashplan.repository.restic.locking import shared_lock
from stashplan.repository.restic.restore_dir import TreeRestored, restore_tree
from stashplan.repository.restic.snapshots import ResticSnapshot, id_prefix, load_all, select, snapshot_ids
from stashplan.repository.restic.streaming import stream_file
from stashplan.repository.restic.trees import Node, find, load_tree, walk
from stashplan.repository.snapshots import Snapshot

SUPPORTED_VERSIONS = (1, 2)


class ResticRepository:
    """An opened restic repository. Not thread-safe; one operation at a time per instance."""

    def __init__(self, storage: Storage, key: ResticKey, layout: ResticLayout, config: dict) -> None:
        self.storage = storage
        self.key = key
        self.layout = layout
        self.version = int(config.get("version", 0))
        self.id = str(config.get("id", ""))
        self._index: ResticIndex | None = None
        self._sizes: dict[bytes, tuple[int, int]] = {}  # tree id -> (bytes, files) below it
        self.warnings: list[str] = []  # printed by the CLI when the command ends
        self.no_lock = False  # read without taking or checking restic locks (restic's --no-lock)

    @classmethod
    def open(cls, storage: Storage, password: str) -> ResticRepository:
        """Open with `password`; RepositoryError if it is not a restic repository or the password is wrong."""
        layout = detect(storage)
        if layout is None:
            raise RepositoryError(f"no restic repository at {storage.location}")
        key: ResticKey | None = None
        for info in sorted(storage.list(layout.keys), key=lambda i: i.name):
            try:
                doc = decode_unpacked(storage.get(info.name), f"key file {info.name}")
                key = open_key_file(doc, password, f"key file {info.name}")
                break
            except (ResticWrongPassword, ResticCorrupt):
                continue
        if key is None:
            raise RepositoryError(f"wrong password for restic repository {storage.location}")
        config = decode_unpacked(key.open(storage.get(CONFIG), what="restic config"), "restic config")
        if not isinstance(config, dict) or config.get("version") not in SUPPORTED_VERSIONS:
            version = config.get("version") if isinstance(config, dict) else None
            raise RepositoryError(
                f"restic repository {storage.location} has version {version}; stashplan reads versions 1 and 2"
            )
        return cls(storage, key, layout, config)

    @property
    def location(self) -> str:
        return self.storage.location

    def close(self) -> None:
        """Nothing to release: each reading operation releases its restic lock itself."""

    def __enter__(self) -> ResticRepository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ----------------------------------------------------------------------------------
    def reading(self) -> AbstractContextManager[None]:
        """A non-exclusive restic lock held while reading (refused under restic's exclusive lock); nothing
        with `no_lock`."""
        if self.no_lock:
            return nullcontext()
        return shared_lock(self.storage, self.key, self.layout)

    def index(self) -> ResticIndex:
        if self._index is None:
            self._index = load_index(self.storage, self.key, self.layout)
        return self._index

    def loader(self, context: str) -> BlobLoader:
        return BlobLoader(self.storage, self.key, self.layout, self.index(), context)

    def restic_snapshots(self) -> list[ResticSnapshot]:
        """The restic snapshots, oldest first (read before the index, as restic's design asks)."""
        snaps = load_all(self.storage, self.key, self.layout)
        self.index()
        return snaps

    def find(self, ref: str, hostname: str | None = None) -> ResticSnapshot:
        """The snapshot `ref` names; an id or prefix reads only the snapshots it matches, "latest" all."""
        prefix = id_prefix(ref)
        if prefix is None:
            return select(self.restic_snapshots(), ref, hostname, self.location)
        ids = [i for i in snapshot_ids(self.storage, self.layout) if i.startswith(prefix)]
        if len(ids) > 1:
            raise RepositoryError(f"snapshot id prefix {ref} is ambiguous ({len(ids)} snapshots match)")
        snaps = load_all(self.storage, self.key, self.layout, ids)
        self.index()  # after the snapshots, as restic's design asks
        return select(snaps, ref, hostname, self.location)

    def _tree_size(self, loader: BlobLoader, tree_id: bytes) -> tuple[int, int]:
        """(bytes, files) below the tree, each tree read once; without recursion (any depth)."""
        stack = [tree_id]
        loaded: dict[bytes, list[Node]] = {}  # trees on the stack waiting for their subtrees' sizes
        while stack:
            current = stack[-1]
            if current in self._sizes:
                stack.pop()
                continue
            if current not in loaded:
                loaded[current] = load_tree(loader, current)
            nodes = loaded[current]
            subtrees = [n.subtree for n in nodes if n.type == "dir" and n.subtree is not None]
            todo = [t for t in subtrees if t not in self._sizes]
            if todo:
                stack.extend(todo)  # their sizes first; this tree is summed when it is on top again
                continue
            stack.pop()
            del loaded[current]
            total = sum(n.size for n in nodes if n.type == "file")
            files = sum(1 for n in nodes if n.type == "file")
            for sub in subtrees:
                size, count = self._sizes[sub]
                total, files = total + size, files + count
            self._sizes[current] = (total, files)
        return self._sizes[tree_id]

    def single_file(self, snap: ResticSnapshot) -> Node | None:
        """The file of a snapshot holding exactly one file at its root (what `backup --stdin` makes)."""
        nodes = load_tree(self.loader(f"snapshot {snap.short_id}"), snap.tree)
        return nodes[0] if len(nodes) == 1 and nodes[0].type == "file" else None

    def as_snapshot(self, snap: ResticSnapshot) -> Snapshot:
        """A restic snapshot as stashplan's Snapshot value (no stream checksum: restic verifies per blob)."""
        loader = self.loader(f"snapshot {snap.short_id}")
        single = self.single_file(snap)
        size = snap.total_bytes if snap.total_bytes is not None else self._tree_size(loader, snap.tree)[0]
        return Snapshot(
            id=snap.id,
            short_id=snap.short_id,
            time=snap.time,
            end_time=snap.end_time or snap.time,
            hostname=snap.hostname,
            tags=snap.tags,
            source=",".join(snap.paths),
            filename=single.name if single else "",
            total_size=size,
            added_size=snap.data_added,
            checksum="",
        )

    def snapshots(self, *, hostname: str | None = None, tags: Sequence[str] = ()) -> list[Snapshot]:
        """Snapshots oldest first, filtered by host and by tags (a snapshot must have all of them)."""
        wanted = normalise_tags(tags)
        return [
            self.as_snapshot(s)
            for s in self.restic_snapshots()
            if (hostname is None or s.hostname == hostname) and all(t in s.tags for t in wanted)
        ]

    def file_of(self, snap: ResticSnapshot, path: str | None) -> Node:
        """The node to restore: `path` inside the snapshot, else its only file (a --stdin snapshot)."""
        loader = self.loader(f"snapshot {snap.short_id}")
        if path:
            return find(loader, snap.tree, path)
        single = self.single_file(snap)
        if single is not None:
            return single
        examples = [p for p, n in walk(loader, snap.tree) if n.type == "file"][:3]
        raise RepositoryError(
            f"snapshot {snap.short_id} holds {self._tree_size(loader, snap.tree)[1]} files, not one stream: "
            f"restore them into a directory with --target DIR, or one file with --path "
            f"(e.g. {', '.join(examples) or '/path/in/snapshot'})"
        )

    def _tree_at(self, snap: ResticSnapshot, path: str | None) -> bytes | None:
        """The tree id of directory `path` (the root when None), or None when `path` is not a directory,
        or the snapshot is one --stdin stream."""
        if not path:
            return None if self.single_file(snap) is not None else snap.tree
        node = find(self.loader(f"snapshot {snap.short_id}"), snap.tree, path)
        return node.subtree if node.type == "dir" else None

    def selects_directory(self, snapshot: str, *, hostname: str | None = None, path: str | None = None) -> bool:
        """Whether restoring `path` of the snapshot (all of it when None) writes a directory, not one file."""
        snap = self.find(snapshot, hostname)
        return self._tree_at(snap, path) is not None

    def restore_directory(
        self,
        snapshot: str,
        target: Path,
        *,
        hostname: str | None = None,
        path: str | None = None,
        progress: Callable[[int], None] | None = None,
        restore_special: bool = False,
    ) -> tuple[Snapshot, TreeRestored]:
        """Restore directory `path` of a file snapshot (else the whole snapshot, by its full paths) into
        `target`, as `restic restore ID:path --target DIR` does; existing files are never overwritten,
        device nodes and setuid/setgid bits only with `restore_special`."""
        with self.reading():
            snap = self.find(snapshot, hostname)
            tree = self._tree_at(snap, path)
            if tree is None:
                raise RepositoryError(f"snapshot {snap.short_id}: {path or 'its content'} is not a directory")
            done = restore_tree(
                self.loader(f"snapshot {snap.short_id}"), tree, target, progress, restore_special=restore_special
            )
            self.warnings.extend(done.skipped)
            return self.as_snapshot(snap), done

    def restore(
        self,
        snapshot: str,
        out: BinaryIO,
        *,
        hostname: str | None = None,
        progress: Callable[[int], None] | None = None,
        path: str | None = None,
    ) -> Snapshot:
        """Stream one file of a snapshot (id, unique prefix or "latest") to `out`, every blob verified."""
        with self.reading():
            snap = self.find(snapshot, hostname)
            node = self.file_of(snap, path)
            stream_file(self.loader(f"snapshot {snap.short_id}"), node, out, progress)
            return self.as_snapshot(snap)

    def check(self, *, read_data: bool = False) -> CheckResult:
        with self.reading():
            return run_check(self.storage, self.key, self.layout, read_data=read_data)

    def stats(self) -> RepoStats:
        total = packs = 0
        for info in self.storage.list():
            if info.name.startswith(self.layout.locks):
                continue
            total += info.size
            packs += info.name.startswith("data/")
        snaps = self.snapshots()
        raw = sum(s.total_size for s in snaps)
        return RepoStats(total, len(snaps), raw, raw / total if total else 0.0, packs, len(self.index()))

    # --- writing: refused -------------------------------------------------------------------------
    def backup(self, *args: object, **kwargs: object) -> NoReturn:
        raise refusal(self.location, "backup")

    def forget(self, *args: object, **kwargs: object) -> NoReturn:
        raise refusal(self.location, "forget")

    def prune(self, *args: object, **kwargs: object) -> NoReturn:
        raise refusal(self.location, "prune")

    def unlock(self, *args: object, **kwargs: object) -> NoReturn:
        raise refusal(self.location, "unlock (use `restic unlock`)")
