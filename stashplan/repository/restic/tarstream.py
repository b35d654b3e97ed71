"""A restic file snapshot as one POSIX (pax) tar stream, so `migrate` can keep it as one stashplan snapshot.

Each node becomes a tar member with its path below the snapshot root, content (streamed, every blob
verified), permissions, owner, mtime to the nanosecond and extended attributes (`SCHILY.xattr.*`, which
GNU tar restores with --xattrs); symlinks, hardlinks, FIFOs and device nodes as tar types. Sockets and
restic's `irregular` nodes have no tar form: they are listed in `skipped`, never dropped silently.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator

from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.metadata import NodeMeta
from stashplan.repository.restic.streaming import iter_file
from stashplan.repository.restic.trees import walk

BLOCK = 512
RECORD = 20 * BLOCK  # tar's default blocking factor, as GNU tar and Python's tarfile pad to
_TYPES = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "fifo": tarfile.FIFOTYPE,
          "dev": tarfile.BLKTYPE, "chardev": tarfile.CHRTYPE}


def _member(path: str, meta: NodeMeta) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mode = meta.permissions
    info.uid, info.gid, info.uname, info.gname = meta.uid, meta.gid, meta.user, meta.group
    pax: dict[str, str] = {}
    if meta.mtime_ns is not None:
        seconds, nanos = divmod(meta.mtime_ns, 1_000_000_000)
        info.mtime = seconds
        if nanos or seconds < 0:
            pax["mtime"] = f"{seconds}.{nanos:09d}" if seconds >= 0 else str(seconds)
    for name, value in meta.xattrs:
        pax[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    info.pax_headers = pax
    return info


def tar_stream(loader: BlobLoader, tree_id: bytes, skipped: list[str]) -> Iterator[bytes]:
    """The tar archive of everything below `tree_id`, in pieces; nodes without a tar form go to `skipped`."""
    written = 0
    hardlinks: dict[tuple[int, int], str] = {}
    for slashed, node in walk(loader, tree_id, safe=True):
        path, meta = slashed[1:], node.meta
        info = _member(path, meta)
        key = meta.hardlink_key if node.type == "file" else None
        if key is not None and key in hardlinks:
            info.type, info.linkname = tarfile.LNKTYPE, hardlinks[key]
        elif node.type == "file":
            info.type, info.size = tarfile.REGTYPE, node.size
            if key is not None:
                hardlinks[key] = path
        elif node.type in _TYPES:
            info.type = _TYPES[node.type]
            info.linkname = meta.linktarget
            if node.type in ("dev", "chardev"):
                info.devmajor, info.devminor = os.major(meta.device), os.minor(meta.device)
        else:
            skipped.append(f"/{path}: a {node.type} has no tar form; not copied")
            continue
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        yield header
        written += len(header)
        if info.type == tarfile.REGTYPE:
            yield from iter_file(loader, node)
            padding = -node.size % BLOCK
            yield bytes(padding)
            written += node.size + padding
    end = 2 * BLOCK
    yield bytes(end + (-(written + end) % RECORD))
