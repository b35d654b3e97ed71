"""One loop per local state database: an exclusive `flock` on the state file itself, so every path to it
(a symlink, `x/../state.db`, a bind mount) contends for the one lock; `<real path>.lock` says who holds it.

The kernel drops the lock when its holder exits, even after `kill -9`, so a stale lock never survives
its loop. The descriptor is not inherited by the Job processes the loop starts. (SQLite locks with
`fcntl` byte ranges, which `flock` does not touch on local file systems.)
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from stashplan.errors import StashplanError


class StateLocked(StashplanError):
    """Another loop owns the state database."""


def lock_path(state: Path) -> Path:
    """Where the holder of the state file's lock is written: beside the file's real path."""
    real = Path(os.path.realpath(state))
    return real.with_name(real.name + ".lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another loop"
    return f"the loop pid {info.get('pid', '?')} on host {info.get('host', '?')} (since {info.get('since', '?')})"


class StateLock:
    """`acquire` takes the lock or raises StateLocked naming the holder; with `wait`, it waits until the
    holder ends (or `cancelled()` turns true). `release` (or the process ending) frees it."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.path = lock_path(state)
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False, cancelled: Callable[[], bool] = lambda: False,
                on_wait: Callable[[str], None] = lambda holder: None) -> bool:
        """True once held; False only when `cancelled` ended a wait. Creates the state file (empty: SQLite
        takes it as a new database) so that the lock is the file's own."""
        self.state.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.state, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.path = lock_path(self.state)  # the real path, now that the file exists
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
            holder = _holder(self.path)
            if not wait:
                os.close(fd)
                raise StateLocked(f"state {self.state} is in use by {holder}; stop that loop, "
                                  "or run with --wait-for-lock to wait for it")
            if not told:
                on_wait(holder)
                told = True
            if cancelled():
                os.close(fd)
                return False
            time.sleep(0.2)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        self.path.write_text(json.dumps(info))
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            self.path.write_text("")
            os.close(self._fd)  # closing drops the flock
            self._fd = None
