"""Repository locks: plain JSON objects under `locks/`, shared (backup, restore, check) or exclusive
(forget, prune, repair).

A lock is written first and the others are read after, so two racing writers both see each other.
A held lock is renewed every REFRESH_EVERY under a new name (the old one is deleted once the new one is
stored and the old one found intact), so a lock is never re-created after someone removed it: a holder
whose lock was removed or replaced learns it (`check`, `verify`) and must not commit. On its own host a
lock is live while its process runs (pid and process start time), whatever its age; elsewhere it is stale
when not refreshed for STALE_AFTER (STASHPLAN_LOCK_STALE_SECONDS). Stale locks are removed by the next
operation. A conflict with a live lock is retried until `wait` runs out (restic's `--retry-lock`).
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
from pathlib import Path
from types import FrameType

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.pids import alive

REFRESH_EVERY = timedelta(seconds=60)
STALE_AFTER = timedelta(minutes=5)
STALE_ENV = "STASHPLAN_LOCK_STALE_SECONDS"  # tests shorten the stale age; read by `stale_age` only
UNLOCK_HINT = "`stashplan repo unlock --remove-all` removes it if its process is surely gone"
log = logging.getLogger(__name__)


class LockedError(RepositoryError):
    """Another process holds a conflicting lock."""


class LockLostError(RepositoryError):
    """The lock this process held was removed or replaced by someone else (a prune that found it stale):
    what the operation wrote since may already be gone, so it must not commit."""


def stale_age() -> timedelta:
    """The age after which a lock of another host is stale: STASHPLAN_LOCK_STALE_SECONDS, else 5 minutes."""
    raw = os.environ.get(STALE_ENV, "")
    try:
        seconds = float(raw) if raw else 0.0
    except ValueError:
        raise RepositoryError(f"{STALE_ENV}={raw!r} is not a number of seconds") from None
    return timedelta(seconds=seconds) if seconds > 0 else STALE_AFTER


def refresh_interval(stale: timedelta) -> timedelta:
    """How often a held lock is renewed: every minute, or five times per stale age when that is shorter."""
    return min(REFRESH_EVERY, stale / 5)


def process_start(pid: int) -> str:
    """The identity of process `pid` beyond its number: boot id and start time in clock ticks since boot
    (Linux /proc); "" when unknown. A reused pid has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 onwards; starttime is 22
    return f"{boot}/{fields[19]}" if len(fields) > 19 else ""


@dataclass(frozen=True)
class LockInfo:
    name: str
    hostname: str
    pid: int
    time: datetime
    exclusive: bool
    operation: str
    process: str = ""  # `process_start` of its pid when written ("" in locks of older releases)

    def stale(self, now: datetime, hostname: str, stale_after: timedelta | None = None) -> bool:
        """On this host: its process is gone (or its pid now names another process); a lock whose process
        still runs is never stale, however old (stopped or with its clock behind). Elsewhere, and for locks
        not recording their process start: not refreshed for `stale_after`."""
        if self.hostname == hostname:
            if not alive(self.pid):
                return True
            running = process_start(self.pid) if self.process else ""
            if running:
                return running != self.process
        return now - self.time > (stale_after or STALE_AFTER)

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{kind} lock {self.name} ({self.operation}, pid {self.pid} on {self.hostname}, refreshed {self.time:%Y-%m-%d %H:%M:%S}Z)"


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
                    process=str(doc.get("process", "")),
                )
            )
        except ObjectNotFound:
            continue
        except (ValueError, KeyError, TypeError):
            # Unreadable (a write cut short): exclusive until it is old enough to be stale.
            out.append(LockInfo(info.name, "?", 0, _now(), True, "unreadable"))
    return out


def remove_stale(
    storage: Storage, locks: list[LockInfo], stale: timedelta | None = None
) -> list[LockInfo]:
    """Delete the stale locks among `locks` (logging each); returns the live ones."""
    now, host, live, stale = _now(), socket.gethostname(), [], stale or stale_age()
    for other in locks:
        if other.stale(now, host, stale):
            try:
                storage.delete(other.name)
                log.warning("%s: removed stale %s", storage.location, other.describe())
            except ObjectNotFound:
                pass
        else:
            live.append(other)
    return live


class Lock:
    """A held lock; renewed by a background timer until `release`. `check` (cheap) and `verify` (reads the
    lock back) raise LockLostError once someone else removed or replaced it."""

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
        self.stale_after = stale_after or stale_age()
        self.refresh_every = refresh_every or refresh_interval(self.stale_after)
        self.hostname = socket.gethostname()
        self.name = self._new_name()
        self._content = b""  # what this process last stored under `name`
        self._process = process_start(os.getpid())
        self._mutex = threading.Lock()  # renewal (timer thread) against verify (caller)
        self._lost = ""  # why the lock is lost, once it is
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _new_name() -> str:
        return f"locks/{secrets.token_hex(32)}"  # 64 hex: the name restic's REST protocol accepts

    def _doc(self) -> bytes:
        doc = {
            "time": _now().isoformat().replace("+00:00", "Z"),
            "hostname": self.hostname,
            "pid": os.getpid(),
            "process": self._process,
            "exclusive": self.exclusive,
            "operation": self.operation,
        }
        return json.dumps(doc).encode()

    def _write(self) -> None:
        self._content = self._doc()
        self.storage.put(self.name, self._content)

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

    def _intact(self) -> str:
        """"" while our lock object holds what we stored; else how it was lost ("removed" or "replaced")."""
        try:
            stored = self.storage.get(self.name)
        except ObjectNotFound:
            return "removed"
        return "" if stored == self._content else "replaced"

    def _lose(self, how: str) -> None:
        self._lost = f"lock {self.name[:18]}… of {self.storage.location} was {how} while the {self.operation} ran (by a prune?)"
        self._stop.set()

    def _renew(self) -> None:
        """Store the lock under a new name, then make sure the old one was never touched before dropping it:
        a lock removed by someone is noticed, never silently re-created."""
        with self._mutex:
            if self._lost:
                return
            new_name, new_content = self._new_name(), self._doc()
            self.storage.put(new_name, new_content)
            try:
                how = self._intact()
            except BaseException:
                self._delete_name(new_name)
                raise
            if how:
                self._delete_name(new_name)
                self._lose(how)
                return
            old, self.name, self._content = self.name, new_name, new_content
            self._delete_name(old)

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_every.total_seconds()):
            try:
                self._renew()
            except Exception as exc:  # a failed renewal is retried at the next tick
                log.warning("%s: could not refresh lock %s: %s", self.storage.location, self.name, exc)

    @property
    def lost(self) -> bool:
        """True once a renewal or `verify` found the lock removed or replaced."""
        return bool(self._lost)

    def check(self, consequence: str = "") -> None:
        """LockLostError (with `consequence` appended) if a renewal found the lock removed or replaced; no
        storage access, so cheap enough for every chunk."""
        if self._lost:
            raise LockLostError(self._lost + (f"; {consequence}" if consequence else ""))

    def verify(self, consequence: str = "") -> None:
        """LockLostError (with `consequence` appended) unless the lock object still holds what this process
        stored; a writer calls this before and after its commit."""
        with self._mutex:
            if not self._lost:
                how = self._intact()
                if how:
                    self._lose(how)
        if self._lost:
            raise LockLostError(self._lost + (f"; {consequence}" if consequence else ""))

    def _delete_name(self, name: str) -> None:
        try:
            self.storage.delete(name)
        except ObjectNotFound:
            pass
        except Exception as exc:  # left behind: stale once this process is gone
            log.warning("%s: could not delete lock %s: %s", self.storage.location, name, exc)

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
        with self._mutex:
            if not self._lost:  # a lost lock was removed, or is someone else's now
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
