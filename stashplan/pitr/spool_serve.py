"""Prefetched WAL for `restore_command` (the lean half: standard library only, imported before any CLI).

`stashplan pg restore` and `wal-fetch --spool DIR` fetch the WAL files recovery will ask for next into a spool
directory (inside the data directory; `recovery_end_command` removes it). While a file is being fetched, the
spool holds `<name>.pending` with the fetching process's id. PostgreSQL's call for a file is then answered from
the spool: it waits while the file is pending (and its fetcher alive), and moves the file into place without
opening the repository (whose key derivation alone costs more than replaying a segment): hard-linked, and
kept until recovery asks for a later segment (PostgreSQL asks for the last one again when recovery ends, and
may ask for a history file twice). A file the spool does not hold goes to the repository; timeline 1 has no
history file, which is answered at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from stashplan.pids import alive
from stashplan.pitr.spool_names import NO_HISTORY, PENDING, REFILL

SEGMENT_NAME_LENGTH = 24
NOT_FOUND = -1
REPOSITORY_CONFIG = "config"  # stashplan.repository.layout.CONFIG (that package is not lean to import)
WAIT_SECONDS = 300.0  # longest wait for a pending file whose fetcher is alive (a stuck storage)


def _fetcher_alive(marker: Path) -> bool:
    try:
        pid = int(marker.read_text() or "0")
    except (FileNotFoundError, ValueError):
        return False
    return alive(pid)


def serve(spool: Path, name: str, destination: Path, wait: float = WAIT_SECONDS) -> bool:
    """Put the spooled `name` at `destination` (True), waiting while it is being fetched; False when the spool
    does not hold it (the caller fetches it from the repository)."""
    if "/" in name or name.startswith("."):
        return False
    marker = spool / (name + PENDING)
    deadline = time.monotonic() + wait
    delay = 0.002
    while _fetcher_alive(marker) and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    source = spool / name
    if not source.is_file():
        return False
    temporary = destination.with_name(destination.name + ".stashplan-tmp")
    try:
        os.link(source, temporary)
    except FileExistsError:
        os.unlink(temporary)
        os.link(source, temporary)
    except OSError:  # another file system, or no hard links: a copy
        shutil.copyfile(source, temporary)
    os.replace(temporary, destination)
    consumed(spool, name)
    return True


def consumed(spool: Path, name: str) -> None:
    """Recovery has moved on to segment `name`: drop the spooled segments before it. The one served last stays
    (PostgreSQL reads its last segment again when it ends recovery); it shares its inode with the file in
    pg_wal, which PostgreSQL recycles only once replay has moved on past it, after this has removed it."""
    if len(name) != SEGMENT_NAME_LENGTH:
        return
    with contextlib.suppress(FileNotFoundError), os.scandir(spool) as entries:
        for entry in entries:
            if len(entry.name) == SEGMENT_NAME_LENGTH and entry.name < name and entry.name.isalnum():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def mark_pending(spool: Path, names: Iterable[str], pid: int | None = None) -> list[str]:
    """Mark `names` as being fetched by `pid` (this process); the names the spool neither holds nor has
    pending already, which the caller must fetch and then `done` each. The spool must exist (`pg restore`
    made it; once recovery_end_command removed it, nothing is fetched into it again): FileNotFoundError."""
    marked = []
    for name in names:
        marker = spool / (name + PENDING)
        if (spool / name).exists() or _fetcher_alive(marker):
            continue
        temporary = spool / (name + PENDING + ".tmp")
        temporary.write_text(str(os.getpid() if pid is None else pid))
        os.replace(temporary, marker)
        marked.append(name)
    return marked


def done(spool: Path, name: str) -> None:
    """`name` is fetched (or could not be): its waiters go on."""
    with contextlib.suppress(FileNotFoundError):
        (spool / (name + PENDING)).unlink()


def answer_from_args(args: list[str]) -> int | None:
    """`wal-fetch [options] --spool DIR NAME DEST` answered before the CLI is imported: 0 when served from the
    spool; the not-found status (`--not-found-exit`, else 1) for timeline 1's history file (there never is
    one) or a file a local repository does not hold; None for anything else (the CLI then parses, fetches
    and reports)."""
    answer = _answer(args)
    if answer != NOT_FOUND:
        return answer
    code = _option(args[:-2], "--not-found-exit")
    return int(code) if code and code.isdigit() and 0 < int(code) < 126 else 1


def _answer(args: list[str]) -> int | None:
    spool = _option(args[:-2], "--spool")
    if spool is None or len(args) < 2 or any(a.startswith("-") for a in args[-2:]):
        return None
    if args[-2] == NO_HISTORY:
        return NOT_FOUND
    try:
        if serve(Path(spool), args[-2], Path(args[-1])):
            return 0
        return NOT_FOUND if _absent_locally(_option(args[:-2], "--repo", "-r"), args[-2]) else None
    except (OSError, ValueError):
        return None  # the CLI fetches it from the repository and reports any error


def record_refill(spool: Path, pid: int) -> None:
    temporary = spool / (REFILL + f".{pid}.tmp")
    temporary.write_text(str(pid))
    os.replace(temporary, spool / REFILL)


def held(spool: Path) -> int:
    """How many segments the spool holds unread or has pending (FileNotFoundError once it is gone). A segment
    the shell in restore_command linked into pg_wal has a second link: read. The read ones before the newest
    read are removed here (`consumed`)."""
    unread, read = set(), []
    with os.scandir(spool) as entries:
        for entry in entries:
            name = entry.name.removesuffix(PENDING)
            if len(name) != SEGMENT_NAME_LENGTH or not name.isalnum():
                continue
            if name != entry.name:
                unread.add(name)
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat(follow_symlinks=False).st_nlink > 1:
                    read.append(name)
                else:
                    unread.add(name)
    if read:
        consumed(spool, max(read))
    return len(unread)


def refill_is(spool: Path, pid: int) -> bool:
    """True when the spool records `pid` as its refill (the refill started for it goes on; any other stops)."""
    try:
        return (spool / REFILL).read_text().strip() == str(pid)
    except FileNotFoundError:
        return False


def refill_done(spool: Path, pid: int) -> None:
    if refill_is(spool, pid):
        with contextlib.suppress(FileNotFoundError):
            (spool / REFILL).unlink()


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(names[0] + "="):
            return arg.split("=", 1)[1]
    return None


def _absent_locally(repo: str | None, name: str) -> bool:
    """True when `repo` is a local repository (its config there) holding neither object wal-fetch would read
    for `name`: the miss recovery ends on, answered without the CLI (other storages: the CLI asks them)."""
    if repo is None or not repo.startswith(("local:/", "/")):
        return False
    from providers.storage.local import LocalStorage
    from stashplan.pitr.walnames import archive_lacks

    return archive_lacks(LocalStorage(repo.removeprefix("local:")).exists, REPOSITORY_CONFIG, name)
