"""When a lock is stale: on its own host by its process (pid and start time), elsewhere by its age."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

from stashplan.repository.locks import LockInfo, process_start

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
OLD = NOW - timedelta(hours=3)
STALE = timedelta(minutes=5)


def lock(*, host: str = "here", pid: int = 0, process: str = "", refreshed: datetime = OLD) -> LockInfo:
    return LockInfo("locks/x", host, pid or os.getpid(), refreshed, False, "backup", process)


def test_a_lock_of_a_running_process_of_this_host_is_never_stale_however_old() -> None:
    me = process_start(os.getpid())
    assert me
    assert not lock(process=me).stale(NOW, "here", STALE)


def test_a_lock_whose_pid_now_names_another_process_is_stale_at_once() -> None:
    assert lock(process="another-boot/1", refreshed=NOW).stale(NOW, "here", STALE)


def test_a_lock_of_a_finished_process_of_this_host_is_stale_at_once() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert lock(pid=proc.pid, refreshed=NOW).stale(NOW, "here", STALE)


def test_locks_of_other_hosts_and_of_older_releases_go_by_age() -> None:
    me = process_start(os.getpid())
    assert lock(host="elsewhere", process=me).stale(NOW, "here", STALE)
    assert not lock(host="elsewhere", process=me, refreshed=NOW - timedelta(minutes=4)).stale(NOW, "here", STALE)
    assert lock(process="").stale(NOW, "here", STALE)  # no process start recorded: its age decides
