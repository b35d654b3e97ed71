"""Repository locks: plain JSON objects under `locks/`, shared (backup, restore, check) or exclusive
(forget, prune, repair).

A lock is written first and the others are read after, so two racing writers both see each other.
A held lock is rewritten every REFRESH_EVERY; a lock not refreshed for STALE_AFTER (a few intervals)
is stale for every host, and one whose process is gone is stale at once on its own host. Stale locks
are removed by the next operation. A conflict with a live lock is retried until `wait` runs out
(restic's `--retry-lock`), then reported naming the lock.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError

REFRESH_EVERY = timedelta(seconds=60)
STALE_AFTER = timedelta(minutes=5)
UNLOCK_HINT = "`stashplan repo unlock --remove-all` removes it if its process is surely gone"
log = logging.getLogger(__name__)


class LockedError(RepositoryError):
    """Another process holds a conflicting lock."""


@dataclass(frozen=True)
class LockInfo:
    name: str
    hostname: str
    pid: int
    time: datetime
    exclusive: bool
    operation: str

    def stale(self, now: datetime, hostname: str, stale_after: timedelta | None = None) -> bool:
        """Not refreshed for `stale_after` (any host), or its process is gone (this host)."""
        if now - self.time > (stale_after or STALE_AFTER):
            return True
        return self.hostname == hostname and not pid_alive(self.pid)

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{kind} lock {self.name} ({self.operation}, pid {self.pid} on {self.hostname}, refreshed {self.time:%Y-%m-%d %H:%M:%S}Z)"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def read_locks(storage: Storage) -> list[LockInfo]:
    out = []
    for info in storage.list("locks/"):
        try:
            doc = json.loads(storage.get(info.name))
            out.append(
                LockInfo(
                    name=info.name,
                    hostname=str(doc["hostname"]),
                    pid=int(doc["pid"]),
                    time=datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00")),
                    exclusive=bool(doc["exclusive"]),
                    operation=str(doc.get("operation", "")),
                )
            )
        except ObjectNotFound:
            continue
        except (ValueError, KeyError, TypeError):
            # Unreadable (a write cut short): exclusive until it is old enough to be stale.
            out.append(LockInfo(info.name, "?", 0, _now(), True, "unreadable"))
    return out


def remove_stale(
    storage: Storage, locks: list[LockInfo], stale_after: timedelta = STALE_AFTER
) -> list[LockInfo]:
    """Delete the stale locks among `locks` (logging each); returns the live ones."""
    now, host, live = _now(), socket.gethostname(), []
    for other in locks:
        if other.stale(now, host, stale_after):
            try:
                storage.delete(other.name)
                log.warning("%s: removed stale %s", storage.location, other.describe())
            except ObjectNotFound:
                pass
        else:
            live.append(other)
    return live


class Lock:
    """A held lock; refreshed by a background timer until `release`."""

    def __init__(
        self,
        storage: Storage,
        *,
        exclusive: bool,
        operation: str,
        refresh_every: timedelta | None = None,
        stale_after: timedelta | None = None,
    ) -> None:
        self.storage = storage
        self.exclusive = exclusive
        self.operation = operation
        self.refresh_every = refresh_every or REFRESH_EVERY
        self.stale_after = stale_after or STALE_AFTER
        self.hostname = socket.gethostname()
        self.name = f"locks/{secrets.token_hex(32)}"  # 64 hex: the name restic's REST protocol accepts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        doc = {
            "time": _now().isoformat().replace("+00:00", "Z"),
            "hostname": self.hostname,
            "pid": os.getpid(),
            "exclusive": self.exclusive,
            "operation": self.operation,
        }
        self.storage.put(self.name, json.dumps(doc).encode())

    def _conflict(self) -> LockInfo | None:
        others = [o for o in read_locks(self.storage) if o.name != self.name]
        for other in remove_stale(self.storage, others, self.stale_after):
            if self.exclusive or other.exclusive:
                return other
        return None

    def acquire(self, wait: float = 0.0) -> Lock:
        """Take the lock, retrying a conflict with a live lock for up to `wait` seconds."""
        deadline = time.monotonic() + wait
        delay = 0.5
        while True:
            try:
                self._write()
                other = self._conflict()
            except BaseException:  # SIGTERM or a storage error between writing the lock and deciding
                self._delete()
                raise
            if other is None:
                break
            self._delete()
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f" (waited {wait:.0f}s)" if wait else ""
                raise LockedError(
                    f"repository {self.storage.location} is locked{waited}: {other.describe()}; locks not "
                    f"refreshed for {self.stale_after.total_seconds():.0f}s are removed automatically; {UNLOCK_HINT}"
                )
            time.sleep(min(left, delay * (0.5 + random.random())))
            delay = min(delay * 2, 10.0)
        self._thread = threading.Thread(target=self._refresh, name="stashplan-lock-refresh", daemon=True)
        self._thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_every.total_seconds()):
            try:
                self._write()
            except Exception as exc:  # a failed refresh is retried at the next tick
                log.warning("%s: could not refresh lock %s: %s", self.storage.location, self.name, exc)

    def _delete(self) -> None:
        try:
            self.storage.delete(self.name)
        except ObjectNotFound:
            pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._delete()


def unlock(storage: Storage, *, remove_all: bool = False) -> list[str]:
    """Delete stale locks (every lock with `remove_all`); returns the names removed."""
    locks = read_locks(storage)
    live = [] if remove_all else remove_stale(storage, locks)
    removed = []
    for info in locks:
        if info in live:
            continue
        try:
            storage.delete(info.name)
        except ObjectNotFound:
            pass
        removed.append(info.name)
    return removed


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM while a lock is held; the exit code is 143."""


def _terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


@contextmanager
def released_on_sigterm() -> Iterator[None]:
    """While a lock is held, SIGTERM unwinds the operation (the lock is released, temporary files
    removed) and the process exits 143. Only in the main thread, and only where SIGTERM would
    otherwise kill the process outright (a handler someone else installed is left alone)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
