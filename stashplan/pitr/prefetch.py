"""Fetching WAL ahead of recovery into the spool `restore_command` is answered from (`spool_serve`).

`stashplan pg restore` fetches the first files recovery will read (the target timeline's history, then the
segments from the base backup's start along the timeline history) while the base backup is extracted;
`wal-fetch --spool` fetches its own file, then the next segments on that timeline in a background process,
so PostgreSQL replays one segment while the next ones are fetched. At most `limit` files are ahead at a
time (default 16: 256 MiB of 16 MiB segments, as pgBackRest's archive-get-queue-max of 128 MiB is of the same
order). Only whole archived segments are fetched ahead: a `.partial` (what wal-receive has so far) is read
when PostgreSQL asks for it, so it is as fresh as it can be.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stashplan.errors import StashplanError
from stashplan.pitr import spool_serve, walstore
from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.timelines import Switch, chain, history_name
from stashplan.pitr.walnames import (
    DEFAULT_SEGMENT_SIZE,
    WalKind,
    parse_wal_name,
    segment_name,
    segment_number,
    segment_of,
)
from stashplan.pitr.window import Window
from stashplan.repository.repo import Repository

DEFAULT_AHEAD = 16
EARLY = 2  # files fetched ahead while the data directory is still being written
FOLLOW_IDLE = 300.0  # seconds a follower waits for recovery to take a file before it gives up
WORKERS = 4


def recovery_files(
    backup: BaseBackup,
    window: Window,
    histories: dict[int, tuple[Switch, ...]],
    whole: dict[int, set[int]],
    limit: int,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    stop_lsn: int | None = None,
) -> list[str]:
    """The first `limit` WAL files a recovery from `backup` along `window`'s timeline reads, in order: the
    target timeline's history file (when it is not the backup's), then each segment from the backup's start,
    named on the timeline it is read from, while the archive holds it whole; up to the segment holding
    `stop_lsn` (an LSN target) or the window's end."""
    if limit <= 0:
        return []
    line = chain(window.timeline, histories)
    files = [history_name(window.timeline)] if window.timeline != backup.timeline else []
    last = (
        window.last_segment
        if stop_lsn is None
        else min(window.last_segment, segment_of(stop_lsn, segment_size))
    )
    segno = segment_of(backup.start_lsn, segment_size)
    while len(files) < limit and segno <= last:
        owner = line.owner(segno, segment_size)
        if segno not in whole.get(owner, set()):
            break
        files.append(segment_name(owner, segno, segment_size))
        segno += 1
    return files


def segments_after(name: str, count: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> list[str]:
    """The `count` segments after segment `name` on its timeline (none after a history or other file)."""
    wal = parse_wal_name(name)
    if wal.kind is not WalKind.SEGMENT:
        return []
    first = segment_number(name, segment_size) + 1
    return [segment_name(wal.timeline, n, segment_size) for n in range(first, first + count)]


def fill(repo: Repository, spool: Path, names: Sequence[str], workers: int = WORKERS) -> int:
    """Fetch each of `names` marked pending by this process into the spool, several at once; each one's
    marker is removed when it is done, found or not. How many were fetched. Errors are left to the call
    PostgreSQL makes for the file, which fetches it from the repository and reports them."""

    def one(name: str) -> bool:
        try:
            return walstore.fetch(repo, name, spool / name, partial=False)
        except (StashplanError, OSError, ValueError):
            with contextlib.suppress(OSError):
                (spool / name).unlink()
            return False
        finally:
            spool_serve.done(spool, name)

    if not names:
        return 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="stashplan-wal-prefetch") as pool:
        return sum(pool.map(one, names))


def prefetch(repo: Repository, spool: Path, names: Sequence[str]) -> int:
    """Mark and fetch `names` in this process (what `pg restore` does while it extracts)."""
    return fill(repo, spool, spool_serve.mark_pending(spool, names))


def follow(
    repo: Repository,
    spool: Path,
    names: Sequence[str],
    ahead: int,
    idle: float = FOLLOW_IDLE,
    gate: Path | None = None,
) -> None:
    """Fetch `names` (the files recovery reads, in order) into the spool, keeping at most `ahead` segments
    there beyond the one recovery read last (`spool_serve.consumed` removes those before it). Stops when all
    are fetched, when one is not in the archive (recovery then ends there, or asks the repository), when the
    spool is gone (recovery ended: recovery_end_command removes it) or after `idle` seconds in which
    recovery took nothing (the server was not started). Until `gate` exists (the data directory is written:
    its recovery.signal), only EARLY files are fetched, one at a time, so as not to slow the extraction."""
    position, waiting_since, last_seen = 0, time.monotonic(), -1
    me = os.getpid()
    while position < len(names):
        try:
            held = spool_serve.held(spool)
        except FileNotFoundError:
            return
        if not spool_serve.refill_is(spool, me):
            return  # recovery ended (its recovery_end_command removed the spool, or is removing it)
        opened = gate is None or gate.exists()
        room = (ahead if opened else min(ahead, EARLY)) + 1 - held
        if room <= 0:
            if held != last_seen or not opened:  # the idle clock starts once the directory is written
                waiting_since, last_seen = time.monotonic(), held
            if time.monotonic() - waiting_since > idle:
                return
            time.sleep(0.02)
            continue
        batch = list(names[position : position + room])
        marked = spool_serve.mark_pending(spool, batch)
        fetched = fill(repo, spool, marked, WORKERS if opened else 1)
        if fetched < len(marked):
            return  # not in the archive (or unreadable): the calls for it ask the repository
        position += len(batch)
        waiting_since, last_seen = time.monotonic(), -1


def start_follower(
    repo: Repository, spool: Path, names: Sequence[str], ahead: int, gate: Path | None = None
) -> int | None:
    """`follow` in a background process that outlives this one (`pg restore`, whose key it keeps: no second
    key derivation), recorded as the spool's refill; its pid. None when it could not start (the calls
    PostgreSQL makes then fetch, and refill, themselves)."""
    if not names or ahead <= 0:
        return None

    def prepare() -> None:
        spool_serve.record_refill(spool, os.getpid())

    def run() -> None:
        try:
            follow(repo, spool, names, ahead, gate=gate)
        finally:
            spool_serve.refill_done(spool, os.getpid())

    return in_background(run, prepare)


def in_background(run: Callable[[], object], prepare: Callable[[], object]) -> int | None:
    """Run `prepare` then `run` in a forked child that outlives this process (its own session, standard streams
    on /dev/null); returns the child's pid once `prepare` is done in it. None (nothing started) where a fork
    is not safe: another thread is running, or there is no fork."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    ready_r, ready_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:  # this process: wait until the child has marked its files, then go on (and exit)
        os.close(ready_w)
        with contextlib.suppress(OSError):
            os.read(ready_r, 1)
        os.close(ready_r)
        return pid
    try:
        os.close(ready_r)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            prepare()
        finally:
            os.write(ready_w, b"1")
            os.close(ready_w)
        run()
    finally:  # exit 0 whatever happened: PostgreSQL's calls for these files report errors (and a postmaster
        os._exit(0)  # that reaps an orphan as PID 1 takes any other status for a crashed backend)
