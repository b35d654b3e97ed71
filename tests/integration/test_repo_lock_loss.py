"""A backup whose lock could be found stale, as real processes meet it: stopped (SIGSTOP) past the stale age,
or running with its clock behind (libfaketime), while `forget --prune` runs from this host or another one
(a UTS namespace with its own hostname). A live process of this host keeps its lock; a backup whose lock was
removed fails without a snapshot; every snapshot left restores."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from providers.storage import open_storage
from stashplan.repository import Repository
from stashplan.repository.locks import STALE_ENV, Lock, LockLostError, read_locks

PASSWORD = "lock-loss-pass"
STALE = 2.0  # seconds: the stale age all processes of a test use
OTHER_HOST = ["unshare", "--map-root-user", "--uts", "sh", "-c", 'hostname elsewhere && exec "$@"', "sh"]
SKEWED = ["faketime", "-f", "-10m"]  # the writer's clock 10 minutes behind


@pytest.fixture
def repo_url(tmp_path: Path) -> Iterator[str]:
    url = f"local:{tmp_path}/repo"
    repo = Repository.init(open_storage(url), PASSWORD, kdf=(2**14, 8, 1))
    for n in range(2):  # something for `forget --keep-last 1` to remove, so that it prunes
        repo.backup(io.BytesIO(os.urandom(100_000) + b"%d" % n), hostname="db-0", filename="dump.sql")
    repo.close()
    yield url


def env(stale: float | None = STALE) -> dict[str, str]:
    out = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    out.pop(STALE_ENV, None)
    if stale is not None:
        out[STALE_ENV] = str(stale)
    return out


def repo_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stashplan.repository.cli", *args]


def packs(url: str) -> set[str]:
    root = Path(url.removeprefix("local:")) / "data"
    return {p.name for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")}


def start_backup(url: str, *, prefix: tuple[str, ...] = (), stale: float | None = STALE) -> subprocess.Popen[bytes]:
    """A backup that has uploaded packs and is still reading its stream (stdin left open)."""
    before = packs(url)
    proc = subprocess.Popen(
        [*prefix, *repo_cli("backup", "--stdin", "--repo", url, "--host", "db-1")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(stale),
    )
    assert proc.stdin is not None
    proc.stdin.write(os.urandom(14 << 20))  # incompressible: 3 packs of 4 MiB
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while len(packs(url) - before) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the backup uploaded no packs"
        time.sleep(0.05)
    return proc


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    assert proc.stdin is not None
    try:
        proc.stdin.write(os.urandom(1 << 20))
    except BrokenPipeError:
        pass  # it stopped reading: it knew its lock was lost
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def forget_prune(url: str, *, prefix: list[str] | tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    args = [*prefix, *repo_cli("forget", "--keep-last", "1", "--prune", "--repo", url)]
    return subprocess.run(args, capture_output=True, text=True, env=env(), timeout=120, check=False)


def assert_every_snapshot_restores(url: str) -> list[str]:
    repo = Repository.open(open_storage(url), PASSWORD)
    ids = [s.id for s in repo.snapshots()]
    for sid in ids:
        repo.restore(sid, io.BytesIO())  # verifies every chunk and the stream checksum
    assert repo.check().ok
    return ids


def test_a_stopped_backup_of_this_host_keeps_its_lock_whatever_its_age(repo_url: str) -> None:
    proc = start_backup(repo_url)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(STALE * 2)  # older than the stale age: only its live process keeps the lock
        pruned = forget_prune(repo_url)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert pruned.returncode == 1
    assert "is locked" in pruned.stderr and "backup, pid" in pruned.stderr
    code, err = finish(proc)
    assert code == 0, err
    assert len(assert_every_snapshot_restores(repo_url)) == 3


def test_a_stopped_backup_whose_lock_another_host_removed_fails_without_a_snapshot(repo_url: str) -> None:
    proc = start_backup(repo_url)
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(STALE * 2)
        pruned = forget_prune(repo_url, prefix=OTHER_HOST)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert pruned.returncode == 0, pruned.stderr
    assert "removed stale shared lock" in pruned.stderr
    code, err = finish(proc)
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: lock locks/") and lines[-1].endswith(
        "was removed while the backup ran (by a prune?); no snapshot written"
    ), err
    assert len(assert_every_snapshot_restores(repo_url)) == 1  # the one forget kept; none of db-1


def test_a_backup_with_its_clock_behind_keeps_its_lock_here_and_fails_cleanly_when_elsewhere_removes_it(
    repo_url: str,
) -> None:
    assert shutil.which("faketime"), "faketime is installed by .ci/services.sh"
    proc = start_backup(repo_url, prefix=tuple(SKEWED), stale=None)  # the default stale age (5 minutes)
    same_host = forget_prune(repo_url)
    assert same_host.returncode == 1 and "is locked" in same_host.stderr
    other_host = forget_prune(repo_url, prefix=OTHER_HOST)  # sees a lock 10 minutes old: stale
    assert other_host.returncode == 0, other_host.stderr
    code, err = finish(proc)
    assert code == 1
    assert "was removed while the backup ran (by a prune?); no snapshot written" in err.strip().splitlines()[-1]
    assert len(assert_every_snapshot_restores(repo_url)) == 1


def test_a_removed_lock_is_noticed_by_its_renewal_and_never_recreated(tmp_path: Path) -> None:
    storage = open_storage(f"local:{tmp_path}/repo")
    held = Lock(storage, exclusive=False, operation="backup", refresh_every=timedelta(seconds=0.05)).acquire()
    try:
        storage.delete(held.name)
        deadline = time.monotonic() + 10
        while not held.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(LockLostError, match=r"was removed while the backup ran \(by a prune\?\); no snapshot"):
            held.check("no snapshot written")
        time.sleep(0.2)  # several renewal periods
        assert read_locks(storage) == []
    finally:
        held.release()
