"""Whose WAL pg_receivewal's directory holds (pure file reads): each segment's first page carries its server's
system identifier, so a directory left by another server (a database re-created, a receiver's directory reused)
is found before pg_receivewal resumes from it — it would ask the new server for a position it never reached,
and its files would be pushed into this server's archive."""

from __future__ import annotations

import contextlib
from pathlib import Path

from stashplan.pitr.walnames import WalKind, parse_wal_name

XLP_LONG_HEADER = 0x0002  # the first page of every segment has the long header: system identifier, sizes
SYSID_AT = slice(24, 32)  # after the standard page header (20 bytes, aligned to 24)


def wal_files(directory: Path) -> list[Path]:
    """The segments, partial segments and history files in `directory`."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            with contextlib.suppress(ValueError):
                if parse_wal_name(path.name).kind in (WalKind.SEGMENT, WalKind.PARTIAL, WalKind.HISTORY):
                    out.append(path)
    return sorted(out)


def system_identifier_of(path: Path) -> int | None:
    """The system identifier in a segment's first page; None for a file too short or without the long header."""
    with path.open("rb") as f:
        head = f.read(SYSID_AT.stop)
    if len(head) < SYSID_AT.stop or not int.from_bytes(head[2:4], "little") & XLP_LONG_HEADER:
        return None
    return int.from_bytes(head[SYSID_AT], "little")


def foreign(directory: Path, system_identifier: int) -> list[Path]:
    """The segments (whole or partial) in `directory` written by a server other than `system_identifier`."""
    out = []
    for path in wal_files(directory):
        if parse_wal_name(path.name).kind is not WalKind.HISTORY:
            found = system_identifier_of(path)
            if found is not None and found != system_identifier:
                out.append(path)
    return out
