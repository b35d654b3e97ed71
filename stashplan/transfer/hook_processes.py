"""Ending everything an exec hook started (transfer layer): the hook runs in its own session, the transfer is its
child subreaper while it runs, and at its end every process of its session or descended from it is stopped and killed,
found by walking /proc — also those that called setsid or were orphaned (a daemonizing script)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
ROUNDS = 50  # stop-and-rescan rounds before giving up on a hook that keeps forking faster than it is stopped


@dataclass(frozen=True)
class Process:
    """One line of /proc/<pid>/stat, the fields used here."""

    pid: int
    state: str
    ppid: int
    session: int
    start: int  # clock ticks after boot: tells a process from a later one that reused its pid


def scan(proc: Path = Path("/proc")) -> dict[int, Process]:
    """Every process visible now, by pid; those that end while being read are left out."""
    table: dict[int, Process] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text.rpartition(")")[2].split()  # comm may hold spaces and parentheses; fields from 3 on
        with contextlib.suppress(IndexError, ValueError):
            table[int(entry.name)] = Process(int(entry.name), fields[0], int(fields[1]), int(fields[3]), int(fields[19]))
    return table


def _prctl(option: int, arg: int | ctypes.c_int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, arg, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class HookProcesses:
    """The processes of one exec hook. `begin` before it starts (the transfer becomes a child subreaper, so what the
    hook orphans is reparented here and stays in its tree), `end` after it ended or timed out.

    Limits: a process the hook has another service start (systemd-run, at, a container runtime, ssh) is not its
    descendant and is not found; while a hook runs the transfer itself starts no other process (its new children
    that left our session are taken as the hook's orphans); without /proc nothing beyond the hook's own group ends."""

    def __init__(self) -> None:
        self.me = os.getpid()
        self.leader = 0
        self.claimed: dict[int, int] = {}  # pid -> start ticks
        self._before: set[int] = set()
        self._was_subreaper = False
        self._subreaper = False

    def begin(self) -> None:
        flag = ctypes.c_int(0)
        if _prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag)):  # type: ignore[arg-type]
            self._was_subreaper = bool(flag.value)
        self._subreaper = self._was_subreaper or _prctl(PR_SET_CHILD_SUBREAPER, 1)
        self._before = {p.pid for p in scan().values() if p.ppid == self.me}

    def started(self, pid: int) -> None:
        self.leader = pid

    def _claim(self, table: dict[int, Process]) -> None:
        own_session = os.getsid(0)
        changed = True
        while changed:
            changed = False
            for p in table.values():
                if self.claimed.get(p.pid) == p.start:
                    continue
                parent = table.get(p.ppid)
                mine = (
                    p.pid == self.leader
                    or p.session == self.leader
                    or (parent is not None and self.claimed.get(parent.pid) == parent.start)
                    or (p.ppid == self.me and p.pid not in self._before and p.session != own_session)
                )
                if mine:
                    self.claimed[p.pid] = p.start
                    changed = True

    def _alive(self, table: dict[int, Process]) -> list[int]:
        return [pid for pid, start in self.claimed.items()
                if pid in table and table[pid].start == start and table[pid].state not in "ZX"]

    def end(self) -> int:
        """Stop every process of the hook (so none forks any more), then kill them all; returns how many were."""
        try:
            return self._end() if self.leader else 0
        finally:
            self.leader = 0
            if self._subreaper and not self._was_subreaper:
                _prctl(PR_SET_CHILD_SUBREAPER, 0)
                self._subreaper = False

    def _end(self) -> int:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.leader, signal.SIGSTOP)
        stopped: set[int] = set()
        for _ in range(ROUNDS):
            table = scan()
            self._claim(table)
            fresh = [pid for pid in self._alive(table) if pid not in stopped]
            if not fresh:
                break
            for pid in fresh:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.leader, signal.SIGKILL)
        self._reap(set(self.claimed))
        return len(stopped - {self.leader})

    def _reap(self, pids: set[int]) -> None:
        """Collect the orphans that were reparented here (not the leader: its Popen waits for it)."""
        table = scan()
        for pid in pids - {self.leader}:
            if pid in table and table[pid].ppid == self.me:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
