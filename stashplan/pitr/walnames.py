"""WAL file names and LSN arithmetic, as PostgreSQL defines them (pure).

A segment is named `TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then the segment number split into a "log id" and
the segment within it (2^32 bytes of WAL per log id). Timeline history files are `TTTTTTTT.history`, backup
history files `<segment>.XXXXXXXX.backup`, partial segments `<segment>.partial`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024  # PostgreSQL's default (initdb --wal-segsize changes it)
WAL_PREFIX = "wal/"  # where the repository keeps archived WAL files (docs/repository-format.md)

_SEGMENT = re.compile(r"[0-9A-F]{24}")
_HISTORY = re.compile(r"([0-9A-F]{8})\.history")
_BACKUP = re.compile(r"([0-9A-F]{24})\.[0-9A-F]{8}\.backup")
_PARTIAL = re.compile(r"([0-9A-F]{24})\.partial")
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


class WalKind(StrEnum):
    SEGMENT = "segment"
    HISTORY = "history"
    BACKUP = "backup"
    PARTIAL = "partial"


@dataclass(frozen=True)
class WalFile:
    """One file PostgreSQL archives: its name, kind and timeline; `segment` is the 24-digit segment name
    it belongs to (empty for a history file)."""

    name: str
    kind: WalKind
    timeline: int
    segment: str = ""

    @property
    def object_name(self) -> str:
        """Its object name in the repository: `wal/<timeline, 8 hex digits>/<name>`."""
        return f"{WAL_PREFIX}{self.timeline:08X}/{self.name}"


def archived_names(file_name: str, partial: bool = True) -> list[str]:
    """The objects that may hold `file_name` in the archive: its own, then for a segment its `.partial` one
    (a timeline's newest segment may be held only so)."""
    wal = parse_wal_name(file_name)
    return [wal.object_name] + (
        [wal.object_name + ".partial"] if partial and wal.kind is WalKind.SEGMENT else []
    )


def archive_lacks(exists: Callable[[str], bool], config: str, file_name: str) -> bool:
    """True when the storage `exists` asks holds a repository (its `config` object) but neither object that may
    hold `file_name`: a miss told without the repository's key."""
    return exists(config) and not any(exists(n) for n in archived_names(file_name))


def parse_wal_name(name: str) -> WalFile:
    """The WAL file `name` names; ValueError for anything PostgreSQL would not archive."""
    if _SEGMENT.fullmatch(name):
        return WalFile(name, WalKind.SEGMENT, int(name[:8], 16), name)
    if m := _HISTORY.fullmatch(name):
        return WalFile(name, WalKind.HISTORY, int(m[1], 16))
    if m := _BACKUP.fullmatch(name):
        return WalFile(name, WalKind.BACKUP, int(m[1][:8], 16), m[1])
    if m := _PARTIAL.fullmatch(name):
        return WalFile(name, WalKind.PARTIAL, int(m[1][:8], 16), m[1])
    raise ValueError(
        f"WAL file name {name!r}: expected a segment (24 hex digits), TTTTTTTT.history, "
        "<segment>.XXXXXXXX.backup or <segment>.partial"
    )


def parse_lsn(text: str) -> int:
    """An LSN written as PostgreSQL prints it (`16/B374D848`) as a number; ValueError otherwise."""
    m = _LSN.fullmatch(text.strip())
    if not m:
        raise ValueError(f"LSN {text!r}: expected X/Y in hexadecimal, as pg_current_wal_lsn() prints it")
    return (int(m[1], 16) << 32) | int(m[2], 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _per_log_id(segment_size: int) -> int:
    if segment_size <= 0 or segment_size & (segment_size - 1):
        raise ValueError(f"WAL segment size {segment_size}: must be a power of two")
    return 0x100000000 // segment_size


def segment_name(timeline: int, segno: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
    """The file name of segment number `segno` on `timeline`."""
    per = _per_log_id(segment_size)
    return f"{timeline:08X}{segno // per:08X}{segno % per:08X}"


def segment_number(name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The segment number of a 24-digit segment name (its timeline left out)."""
    if not _SEGMENT.fullmatch(name):
        raise ValueError(f"WAL segment name {name!r}: expected 24 hex digits")
    return int(name[8:16], 16) * _per_log_id(segment_size) + int(name[16:24], 16)


def segment_of(lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The number of the segment holding the byte at `lsn`."""
    return lsn // segment_size
