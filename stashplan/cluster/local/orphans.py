"""Processes a killed loop left behind: each Job process is recorded (pid + start time) while it runs, so
the next loop can end exactly that process group and never a process that reused its pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has ended already
        return None
    return fields[19]


def record_process(path: Path, pid: int) -> None:
    """Write `pid start-time` to `path` (atomically), for `end_orphan` after a crash."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid} {start_time(pid) or ''}\n")
    os.replace(tmp, path)


def _alive(pid: int, started: str) -> bool:
    return start_time(pid) == started


def end_orphan(path: Path, grace: float = 3.0) -> str:
    """End the process group recorded in `path` if that process still runs (SIGTERM, SIGKILL after
    `grace` s); remove the record. Returns what was done, for the Job's failure message."""
    try:
        pid_text, _, started = path.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return "its process was not recorded"
    try:
        if not started or not _alive(pid, started):
            return f"its process {pid} had already ended"
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end and _alive(pid, started):
                time.sleep(0.05)
            if not _alive(pid, started):
                break
        return f"its process group {pid} was ended"
    finally:
        path.unlink(missing_ok=True)
