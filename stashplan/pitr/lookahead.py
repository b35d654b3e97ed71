"""`wal-push --spool DIR`: look-ahead for archive_command. A call pushes its own file, then the files PostgreSQL
has marked ready next (`pg_wal/archive_status/*.ready`), several at once, recording each in the spool
(`<name>.ok`: its size and BLAKE3). PostgreSQL's later call for such a file is answered from the spool when the
file still has that size and digest, without opening the repository (its key derivation alone costs more than
a push). As with pgBackRest's asynchronous archiving, the spool trusts that the repository keeps what was pushed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

from stashplan.errors import StashplanError
from stashplan.pitr.walnames import parse_wal_name

READY = ".ready"


def _fingerprint(path: Path) -> str:
    data = path.read_bytes()
    return f"{len(data)} {blake3.blake3(data).hexdigest()}\n"


def pushed_ahead(spool: Path, path: Path) -> bool:
    """True when the spool records `path` as pushed with its current content; the record is then removed
    (PostgreSQL marks the file done and never asks again)."""
    record = spool / (path.name + ".ok")
    try:
        recorded = record.read_text()
    except FileNotFoundError:
        return False
    if recorded != _fingerprint(path):
        record.unlink()
        return False  # changed since (a recycled name?): push it as any other, conflicts refused there
    record.unlink()
    return True


def ready_after(path: Path, limit: int) -> list[Path]:
    """Up to `limit` files PostgreSQL has marked ready to archive, after `path` in name order."""
    status = path.parent / "archive_status"
    names = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(status):
            name = entry.name.removesuffix(READY)
            if entry.name.endswith(READY) and name > path.name:
                with contextlib.suppress(ValueError):
                    parse_wal_name(name)
                    names.append(name)
    return [path.parent / n for n in sorted(names)[:limit]]


def push_ahead(spool: Path, files: list[Path], push: Callable[[Path], object], workers: int = 4) -> list[str]:
    """Push `files` (several at once), recording each success in the spool; the names that failed (PostgreSQL
    will ask for them and the push is then tried again, its error reported)."""
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)

    def one(path: Path) -> str | None:
        try:
            fingerprint = _fingerprint(path)
            push(path)
        except (StashplanError, OSError, ValueError):
            return path.name
        temporary = spool / (path.name + ".ok.tmp")
        temporary.write_text(fingerprint)
        temporary.replace(spool / (path.name + ".ok"))
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="stashplan-wal-ahead") as pool:
        return [name for name in pool.map(one, files) if name is not None]
