"""Restoring a directory of a restic file snapshot (or the whole snapshot) into a local directory.

Every tree is read and every node name checked before anything is written, and existing files are
never overwritten: a path that already exists (other than a directory where the snapshot has one)
refuses the restore up front. Files and new directories get their content (every blob verified), mode,
times, and when running as root their owner; an existing directory keeps its own. Symlinks, hardlinks
and FIFOs are recreated; device nodes (as root) and setuid/setgid bits only with `restore_special`
(`--restore-special`). Writes are relative to directory descriptors opened without following
symlinks, one at a time, so a tree of any depth restores.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
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


@dataclass
class _Level:
    """A directory being restored: its remaining nodes, its path, its node (None for the target itself),
    whether this restore created it, and its identity (device, inode) to return to it from below."""

    nodes: Iterator[Node]
    path: Path
    node: Node | None
    created: bool
    identity: tuple[int, int]


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


class _Writer:
    def __init__(
        self, loader: BlobLoader, progress: Callable[[int], None] | None, restore_special: bool
    ) -> None:
        self.loader = loader
        self.progress = progress
        self.done = TreeRestored()
        self.as_root = os.geteuid() == 0
        self.special = restore_special
        self.links: dict[tuple[int, int], Path] = {}

    def tree(self, root_fd: int, tree_id: bytes, target: Path) -> None:
        """Restore the tree into the directory `root_fd`, depth first without recursion: one directory
        descriptor open at a time (a child opened from its parent, the parent reopened as `..` and checked
        to be the same directory), so a tree of any depth restores."""
        fd = os.dup(root_fd)
        stack = [_Level(iter(load_safe_tree(self.loader, tree_id)), target, None, False, _identity(fd))]
        try:
            while stack:
                level = stack[-1]
                node = next(level.nodes, None)
                if node is None:
                    stack.pop()
                    if level.node is not None:
                        fd = self._leave(fd, level, stack[-1])
                    continue
                path = level.path / node.name
                if node.type != "dir":
                    self.node(fd, node, path)
                    continue
                if node.subtree is None:
                    raise RepositoryError(f"{self.loader.context}: directory {path} has no subtree")
                created = self._mkdir(fd, node.name)
                sub = os.open(node.name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = sub
                nodes = load_safe_tree(self.loader, node.subtree)
                stack.append(_Level(iter(nodes), path, node, created, _identity(fd)))
        finally:
            os.close(fd)

    def _mkdir(self, dir_fd: int, name: str) -> bool:
        try:
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            return False  # checked before: an existing directory, merged into
        self.done.dirs += 1
        return True

    def _leave(self, fd: int, level: _Level, parent: _Level) -> int:
        """Give a finished directory its attributes (only if this restore created it: an existing directory
        keeps its owner, mode and times) and return the descriptor of its parent."""
        up = os.open("..", _DIR_FLAGS, dir_fd=fd)
        try:
            if _identity(up) != parent.identity:
                raise RepositoryError(f"{parent.path} was moved or replaced during the restore")
            if level.created and level.node is not None:
                meta = level.node.meta
                self._own(fd, meta)
                os.chmod(fd, self._mode(meta, level.path))
                self._times(fd, meta)
        except BaseException:
            os.close(up)
            raise
        os.close(fd)
        return up

    def _mode(self, meta: NodeMeta, path: Path) -> int:
        """The node's permissions; setuid and setgid only with `restore_special` (a warning names what lost them)."""
        bits = meta.permissions
        if bits & (stat.S_ISUID | stat.S_ISGID) and not self.special:
            self.done.skipped.append(f"{path}: setuid/setgid bits not restored (pass --restore-special)")
            bits &= ~(stat.S_ISUID | stat.S_ISGID)
        return bits

    def node(self, dir_fd: int, node: Node, path: Path) -> None:
        meta, name = node.meta, node.name
        if node.type == "file":
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
            os.mkfifo(name, 0o600, dir_fd=dir_fd)
            self._attributes(name, meta, dir_fd, path)
        elif node.type in ("dev", "chardev") and self.as_root and self.special:
            kind = stat.S_IFBLK if node.type == "dev" else stat.S_IFCHR
            os.mknod(name, kind | 0o600, meta.device, dir_fd=dir_fd)
            self._attributes(name, meta, dir_fd, path)
        else:
            why = (
                "cannot be restored" if node.type not in ("dev", "chardev")
                else "device nodes need root" if not self.as_root
                else "device nodes only with --restore-special"
            )
            self.done.skipped.append(f"{path}: {node.type} not recreated ({why})")

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
            os.chmod(fd, self._mode(node.meta, path))
            self._times(fd, node.meta)
        except BaseException:
            os.unlink(node.name, dir_fd=dir_fd)  # never leave a partial file behind
            raise
        finally:
            os.close(fd)
        self.done.files += 1

    def _attributes(self, name: str, meta: NodeMeta, dir_fd: int, path: Path) -> None:
        if self.as_root:
            os.chown(name, meta.uid, meta.gid, dir_fd=dir_fd, follow_symlinks=False)
        os.chmod(name, self._mode(meta, path), dir_fd=dir_fd)
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
    loader: BlobLoader,
    tree_id: bytes,
    target: Path,
    progress: Callable[[int], None] | None = None,
    *,
    restore_special: bool = False,
) -> TreeRestored:
    """Restore the tree's content into `target` (created if absent); refuses before writing if any
    path exists already or a node name is unsafe. Device nodes (as root) and setuid/setgid bits only
    with `restore_special`."""
    if _exists(target) is not None and not target.is_dir():
        raise RepositoryError(f"--target {target} exists and is not a directory")
    clash = conflicts(loader, tree_id, target)
    if clash:
        more = f" and {len(clash) - 3} more" if len(clash) > 3 else ""
        raise RepositoryError(
            f"refusing to overwrite {', '.join(clash[:3])}{more}: restore into an empty or new --target directory"
        )
    target.mkdir(parents=True, exist_ok=True)
    writer = _Writer(loader, progress, restore_special)
    root = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        writer.tree(root, tree_id, target)
    finally:
        os.close(root)
    return writer.done
