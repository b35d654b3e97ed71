"""Repository locks: plain JSON objects under `locks/`, shared (backup, restore, check) or exclusive (prune).

A lock is written first and the others are read after, so two racing writers both see each other.
A lock is stale when its process is gone (same host, pid not running) or it was not refreshed for
STALE_AFTER; conflicts with a stale lock are reported with the command that removes it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError

REFRESH_EVERY = timedelta(minutes=5)
STALE_AFTER = timedelta(minutes=30)
UNLOCK_HINT = "`stashplan repo unlock` removes stale locks"


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

    def stale(self, now: datetime, hostname: str) -> bool:
        if now - self.time > STALE_AFTER:
            return True
        return self.hostname == hostname and not pid_alive(self.pid)

    def describe(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{kind} lock {self.name} ({self.operation}, pid {self.pid} on {self.hostname}, since {self.time:%Y-%m-%d %H:%M:%S}Z)"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            out.append(LockInfo(info.name, "?", 0, datetime.fromtimestamp(0, UTC), True, "unreadable"))
    return out


class Lock:
    """A held lock; refreshed by a background timer until `release`."""

    def __init__(self, storage: Storage, *, exclusive: bool, operation: str) -> None:
        self.storage = storage
        self.exclusive = exclusive
        self.operation = operation
        self.hostname = socket.gethostname()
        self.name = f"locks/{secrets.token_hex(32)}"  # 64 hex: the name restic's REST protocol accepts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self) -> None:
        doc = {
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "hostname": self.hostname,
            "pid": os.getpid(),
            "exclusive": self.exclusive,
            "operation": self.operation,
        }
        self.storage.put(self.name, json.dumps(doc).encode())

    def acquire(self) -> Lock:
        self._write()
        now = datetime.now(UTC)
        for other in read_locks(self.storage):
            if other.name == self.name or not (self.exclusive or other.exclusive):
                continue
            self._delete()
            if other.stale(now, self.hostname):
                raise LockedError(
                    f"repository {self.storage.location} is locked by a stale {other.describe()}: "
                    f"the process is gone; {UNLOCK_HINT}"
                )
            raise LockedError(f"repository {self.storage.location} is locked: {other.describe()}")
        self._thread = threading.Thread(target=self._refresh, name="stashplan-lock-refresh", daemon=True)
        self._thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_EVERY.total_seconds()):
            try:
                self._write()
            except Exception:  # a failed refresh is retried at the next tick
                continue

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
    now = datetime.now(UTC)
    host = socket.gethostname()
    removed = []
    for info in read_locks(storage):
        if remove_all or info.stale(now, host):
            try:
                storage.delete(info.name)
            except ObjectNotFound:
                continue
            removed.append(info.name)
    return removed
