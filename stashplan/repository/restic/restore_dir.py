"""Restoring a directory of a restic file snapshot (or the whole snapshot) into a local directory.

Every tree is read and every node name checked before anything is written, and existing files are
never overwritten: a path that already exists (other than a directory where the snapshot has one)
refuses the restore up front. Files get their content (every blob verified), mode, times, and when
running as root their owner; symlinks, hardlinks, FIFOs and (as root) device nodes are recreated.
All writes are relative to directory descriptors opened without following symlinks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stashplan.errors import RepositoryError
from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.metadata import NodeMeta
from stashplan.repository.restic.streaming import iter_file
from stashplan.repository.restic.trees import Node, load_safe_tree

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class TreeRestored:
    """What a directory restore wrote (and what it could not recreate, with the reason)."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    special: int = 0  # FIFOs and device nodes
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        extra = "".join(
            f", {n} {what}"
            for n, what in ((self.hardlinks, "hardlinks"), (self.special, "FIFOs/devices"),
                            (len(self.skipped), "not recreated (see warnings)"))
            if n
        )
        return (
            f"{self.files} files ({self.bytes} bytes), {self.dirs} new directories, {self.symlinks} symlinks"
            f"{extra}; every blob's SHA-256 verified"
        )


def _exists(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def conflicts(loader: BlobLoader, tree_id: bytes, target: Path) -> list[str]:
    """Paths the restore would have to overwrite, after reading every tree and checking every name."""
    found: list[str] = []
    pending: list[tuple[bytes, Path, bool]] = [(tree_id, target, True)]
    while pending:
        current, where, present = pending.pop()
        for node in load_safe_tree(loader, current):
            path = where / node.name
            st = _exists(path) if present else None
            if node.type == "dir" and node.subtree is not None:
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    found.append(str(path))
                pending.append((node.subtree, path, st is not None and stat.S_ISDIR(st.st_mode)))
            elif st is not None:
                found.append(str(path))
    return sorted(found)


class _Writer:
    def __init__(self, loader: BlobLoader, progress: Callable[[int], None] | None) -> None:
        self.loader = loader
        self.progress = progress
        self.done = TreeRestored()
        self.as_root = os.geteuid() == 0
        self.links: dict[tuple[int, int], Path] = {}

    def tree(self, dir_fd: int, tree_id: bytes, path: Path) -> None:
        for node in load_safe_tree(self.loader, tree_id):
            self.node(dir_fd, node, path / node.name)

    def node(self, dir_fd: int, node: Node, path: Path) -> None:
        meta, name = node.meta, node.name
        if node.type == "dir":
            self.directory(dir_fd, node, path)
        elif node.type == "file":
            key = meta.hardlink_key
            if key is not None and key in self.links:
                os.link(self.links[key], path, follow_symlinks=False)
                self.done.hardlinks += 1
                return
            self.file(dir_fd, node, path)
            if key is not None:
                self.links[key] = path
        elif node.type == "symlink":
            os.symlink(meta.linktarget, name, dir_fd=dir_fd)
            if self.as_root:
                os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
            self._times(name, meta, dir_fd=dir_fd, follow_symlinks=False)
            self.done.symlinks += 1
        elif node.type == "fifo":
            os.mkfifo(name, meta.permissions, dir_fd=dir_fd)
            self._attributes(name, meta, dir_fd)
        elif node.type in ("dev", "chardev") and self.as_root:
            kind = stat.S_IFBLK if node.type == "dev" else stat.S_IFCHR
            os.mknod(name, kind | meta.permissions, meta.device, dir_fd=dir_fd)
            self._attributes(name, meta, dir_fd)
        else:
            why = "device nodes need root" if node.type in ("dev", "chardev") else "cannot be restored"
            self.done.skipped.append(f"{path}: {node.type} not recreated ({why})")

    def directory(self, dir_fd: int, node: Node, path: Path) -> None:
        if node.subtree is None:
            raise RepositoryError(f"{self.loader.context}: directory {path} has no subtree")
        try:
            os.mkdir(node.name, 0o700, dir_fd=dir_fd)
            self.done.dirs += 1
        except FileExistsError:
            pass  # checked before: an existing directory, merged into
        sub = os.open(node.name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            self.tree(sub, node.subtree, path)
            self._own(sub, node.meta)
            os.chmod(sub, node.meta.permissions)
            self._times(sub, node.meta)
        finally:
            os.close(sub)

    def file(self, dir_fd: int, node: Node, path: Path) -> None:
        fd = os.open(node.name, _NEW_FILE, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                for data in iter_file(self.loader, node):
                    out.write(data)
                    self.done.bytes += len(data)
                    if self.progress is not None:
                        self.progress(self.done.bytes)
            self._own(fd, node.meta)
            os.chmod(fd, node.meta.permissions)
            self._times(fd, node.meta)
        except BaseException:
            os.unlink(node.name, dir_fd=dir_fd)  # never leave a partial file behind
            raise
        finally:
            os.close(fd)
        self.done.files += 1

    def _attributes(self, name: str, meta: NodeMeta, dir_fd: int) -> None:
        if self.as_root:
            os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
        os.chmod(name, meta.permissions, dir_fd=dir_fd)
        self._times(name, meta, dir_fd=dir_fd)
        self.done.special += 1

    def _own(self, fd: int, meta: NodeMeta) -> None:
        if self.as_root:
            os.chown(fd, meta.uid, meta.gid)

    @staticmethod
    def _times(where: int | str, meta: NodeMeta, **kw: object) -> None:
        if meta.mtime_ns is not None:
            atime = meta.atime_ns if meta.atime_ns is not None else meta.mtime_ns
            os.utime(where, ns=(atime, meta.mtime_ns), **kw)  # type: ignore[arg-type]


def restore_tree(
    loader: BlobLoader, tree_id: bytes, target: Path, progress: Callable[[int], None] | None = None
) -> TreeRestored:
    """Restore the tree's content into `target` (created if absent); refuses before writing if any
    path exists already or a node name is unsafe."""
    if _exists(target) is not None and not target.is_dir():
        raise RepositoryError(f"--target {target} exists and is not a directory")
    clash = conflicts(loader, tree_id, target)
    if clash:
        more = f" and {len(clash) - 3} more" if len(clash) > 3 else ""
        raise RepositoryError(
            f"refusing to overwrite {', '.join(clash[:3])}{more}: restore into an empty or new --target directory"
        )
    target.mkdir(parents=True, exist_ok=True)
    writer = _Writer(loader, progress)
    root = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        writer.tree(root, tree_id, target)
    finally:
        os.close(root)
    return writer.done
