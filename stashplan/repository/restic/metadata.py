"""What a restic tree node records besides its content — Go's file mode bits, times, owner, link target,
hardlink identity, extended attributes — decoded into POSIX terms, and node names checked to be safe.
"""

from __future__ import annotations

import base64
import calendar
import re
import stat
from dataclasses import dataclass

from stashplan.errors import RepositoryError

# Go's os.FileMode keeps these flags in high bits, not where POSIX puts them.
_GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 23, 1 << 22, 1 << 20
_GO_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class NodeMeta:
    mode: int = 0  # Go's os.FileMode
    mtime_ns: int | None = None
    atime_ns: int | None = None
    uid: int = 0
    gid: int = 0
    user: str = ""
    group: str = ""
    linktarget: str = ""  # non-UTF-8 bytes as surrogate escapes
    links: int = 0
    inode: int = 0
    device_id: int = 0
    device: int = 0  # st_rdev of a device node
    xattrs: tuple[tuple[str, bytes], ...] = ()

    @property
    def permissions(self) -> int:
        """The POSIX permission bits, with setuid, setgid and sticky moved to their POSIX places."""
        bits = self.mode & 0o777
        bits |= stat.S_ISUID if self.mode & _GO_SETUID else 0
        bits |= stat.S_ISGID if self.mode & _GO_SETGID else 0
        bits |= stat.S_ISVTX if self.mode & _GO_STICKY else 0
        return bits

    @property
    def hardlink_key(self) -> tuple[int, int] | None:
        """Identity shared by the names of one hardlinked file (restic records inode and device)."""
        return (self.device_id, self.inode) if self.links > 1 and self.inode else None


def go_time_ns(value: object) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time as Go writes it; None for Go's zero time or none."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    m = _GO_TIME.fullmatch(value)
    if m is None:
        raise ValueError(f"bad time {value!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = m.group(8)
    if zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds * 1_000_000_000 + int((m.group(7) or "0").ljust(9, "0"))


def _link_target(n: dict) -> str:
    raw = n.get("linktarget_raw")
    if raw:  # restic >= 0.17 stores a target that is not UTF-8 as base64 bytes
        return base64.b64decode(raw).decode("utf-8", "surrogateescape")
    return str(n.get("linktarget") or "")


def decode_meta(n: dict) -> NodeMeta:
    """The metadata of one decoded tree node (ValueError/TypeError/KeyError when malformed)."""
    return NodeMeta(
        mode=int(n.get("mode") or 0),
        mtime_ns=go_time_ns(n.get("mtime")),
        atime_ns=go_time_ns(n.get("atime")),
        uid=int(n.get("uid") or 0),
        gid=int(n.get("gid") or 0),
        user=str(n.get("user") or ""),
        group=str(n.get("group") or ""),
        linktarget=_link_target(n),
        links=int(n.get("links") or 0),
        inode=int(n.get("inode") or 0),
        device_id=int(n.get("device_id") or 0),
        device=int(n.get("device") or 0),
        xattrs=tuple(
            (str(a["name"]), base64.b64decode(a.get("value") or "")) for a in n.get("extended_attributes") or ()
        ),
    )


def check_names(names: list[str], where: str) -> None:
    """RepositoryError unless every name is one safe path component, and none repeats (a tree from a
    damaged or hostile repository must not write outside the restore target or over its own files)."""
    seen: set[str] = set()
    for name in names:
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise RepositoryError(f"{where}: refusing a node named {name!r} (not a single file name)")
        if name in seen:
            raise RepositoryError(f"{where}: refusing a second node named {name!r} in one directory")
        seen.add(name)
