"""Locks between operations (stale locks of dead processes) and the engine on a real S3 server (moto)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.storage import StorageError, open_storage, storage_from_repository
from stashplan.repository import LockedError, Repository, locks
from stashplan.repository.locks import Lock
from tests.fixtures.s3 import S3Bucket


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_lock(
    repo: Repository, name: str, *, pid: int, exclusive: bool, age: timedelta = timedelta()
) -> None:
    doc = {
        "time": (datetime.now(UTC) - age).isoformat(),
        "hostname": socket.gethostname(),
        "pid": pid,
        "exclusive": exclusive,
        "operation": "prune" if exclusive else "backup",
    }
    repo.storage.put(f"locks/{name}", json.dumps(doc).encode())


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository.init(open_storage(f"local:{tmp_path}/repo"), "pw")


def test_stale_exclusive_lock_of_a_dead_process_is_removed_by_the_next_operation(repo: Repository) -> None:
    write_lock(repo, "old", pid=dead_pid(), exclusive=True)
    assert repo.backup(io.BytesIO(b"data")).total_size == 4
    assert locks.read_locks(repo.storage) == []


def test_live_exclusive_lock_blocks_backup_without_calling_it_stale(repo: Repository) -> None:
    write_lock(repo, "live", pid=os.getpid(), exclusive=True)
    with pytest.raises(LockedError) as info:
        repo.backup(io.BytesIO(b"data"))
    assert "stale" not in str(info.value) and "pid" in str(info.value)
    assert repo.unlock() == []
    assert repo.unlock(remove_all=True) == ["locks/live"]


def test_shared_locks_coexist_but_exclude_prune(repo: Repository) -> None:
    held = Lock(repo.storage, exclusive=False, operation="backup").acquire()
    try:
        snap = repo.backup(io.BytesIO(b"concurrent"))  # a second shared lock is fine
        with pytest.raises(LockedError, match="shared lock"):
            repo.prune()
    finally:
        held.release()
    assert repo.prune().packs_deleted == 0
    assert snap.total_size == 10


def test_lock_of_another_host_not_refreshed_for_a_few_intervals_is_stale_for_everyone(repo: Repository) -> None:
    # In a cluster every pod has its own hostname: its pid means nothing here, its refresh time does.
    write_lock(repo, "evicted-pod", pid=1, exclusive=True, age=locks.STALE_AFTER + timedelta(seconds=5))
    doc = json.loads(repo.storage.get("locks/evicted-pod"))
    repo.storage.put("locks/evicted-pod", json.dumps({**doc, "hostname": "backup-pod-x7k2q"}).encode())
    assert repo.prune().packs_deleted == 0
    assert locks.read_locks(repo.storage) == []


def test_exclusive_operation_waits_for_a_live_lock_to_go_then_runs(repo: Repository) -> None:
    import threading

    held = Lock(repo.storage, exclusive=False, operation="backup").acquire()
    threading.Timer(1.0, held.release).start()
    repo.lock_wait = 30
    assert repo.prune().packs_deleted == 0  # waited, then ran
    repo.lock_wait = 0.5
    held = Lock(repo.storage, exclusive=False, operation="backup").acquire()
    try:
        with pytest.raises(LockedError, match=r"is locked \(waited 0s\): shared lock"):
            repo.prune()
    finally:
        held.release()


def test_sigterm_releases_the_lock_before_the_process_exits(tmp_path: Path) -> None:
    import sys
    import time

    storage = open_storage(f"local:{tmp_path}/repo")
    Repository.init(storage, "pw", kdf=(2**14, 8, 1))
    env = {**os.environ, "STASHPLAN_PASSWORD": "pw"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stashplan", "repo", "backup", "--stdin", "-r", f"local:{tmp_path}/repo"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"partial dump " * 1000)
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not locks.read_locks(storage) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert locks.read_locks(storage), "the backup never took its lock"
    proc.terminate()
    assert proc.wait(timeout=30) == 143
    assert locks.read_locks(storage) == []
    assert Repository.open(storage, "pw").snapshots() == []


def test_backup_and_restore_round_trip_on_s3(s3_bucket: S3Bucket) -> None:
    storage = open_storage(s3_bucket.repo_url("team/db"), env=s3_bucket.endpoint.env())
    repo = Repository.init(storage, "pw")
    data = os.urandom(1 << 20) + b"\n".join(b"row %d" % n for n in range(200_000))
    snap = repo.backup(io.BytesIO(data), hostname="pg-0")
    again = Repository.open(open_storage(s3_bucket.repo_url("team/db"), env=s3_bucket.endpoint.env()), "pw")
    out = io.BytesIO()
    again.restore("latest", out)
    assert out.getvalue() == data
    assert again.check(read_data=True).ok
    keys = [o["Key"] for o in s3_bucket.endpoint.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]]
    assert all(k.startswith("team/db/") for k in keys)
    assert f"team/db/snapshots/{snap.id}" in keys


def test_storage_from_a_repository_resource_and_its_secret(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_repo = {
        "apiVersion": "stash.appscode.com/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "pg-repo", "namespace": "demo"},
        "spec": {
            "backend": {
                "s3": {"endpoint": s3_bucket.endpoint.url, "bucket": s3_bucket.name, "prefix": "/demo/pg/"},
                "storageSecretName": "s3-secret",
            }
        },
    }
    storage = storage_from_repository(s3_repo, {**s3_bucket.endpoint.env(), "RESTIC_PASSWORD": "pw"})
    assert storage.location == f"s3:{s3_bucket.endpoint.url}/{s3_bucket.name}/demo/pg"
    Repository.init(storage, "pw").backup(io.BytesIO(b"x"))
    local_repo = {
        "metadata": {"name": "l"},
        "spec": {"backend": {"local": {"mountPath": str(tmp_path), "subPath": "a/b"}}},
    }
    assert storage_from_repository(local_repo, {}).location == f"local:{tmp_path}/a/b"
    with pytest.raises(StorageError, match=r"Repository ftp-repo: spec.backend: unsupported backend \(ftp\)"):
        storage_from_repository({"metadata": {"name": "ftp-repo"}, "spec": {"backend": {"ftp": {}}}}, {})


def test_s3_missing_bucket_is_a_permanent_storage_error_naming_it(s3_bucket: S3Bucket) -> None:
    missing = open_storage(
        f"s3:{s3_bucket.endpoint.url}/no-such-{s3_bucket.name}", env=s3_bucket.endpoint.env()
    )
    with pytest.raises(
        StorageError, match=rf"s3:{s3_bucket.endpoint.url}/no-such-{s3_bucket.name}: put config: NoSuchBucket"
    ):
        missing.put("config", b"x")


def test_a_held_lock_is_refreshed_while_the_operation_runs(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(locks, "REFRESH_EVERY", timedelta(seconds=0.05))
    held = Lock(repo.storage, exclusive=False, operation="backup").acquire()
    try:
        first = locks.read_locks(repo.storage)[0].time
        deadline = time.monotonic() + 5
        while locks.read_locks(repo.storage)[0].time == first and time.monotonic() < deadline:
            time.sleep(0.02)
        assert locks.read_locks(repo.storage)[0].time > first
    finally:
        held.release()
    assert locks.read_locks(repo.storage) == []


def test_concurrent_backups_into_one_repository_both_succeed_and_check_clean(repo: Repository) -> None:
    import threading

    shared = os.urandom(1 << 20)
    streams = [shared + os.urandom(300_000), shared + os.urandom(300_000)]
    results: dict[int, str] = {}

    def run(n: int) -> None:
        own = Repository.open(repo.storage, "pw")  # as two backup Jobs would
        results[n] = own.backup(io.BytesIO(streams[n]), hostname=f"h{n}").id

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    for n, sid in results.items():
        out = io.BytesIO()
        repo.restore(sid, out)
        assert out.getvalue() == streams[n]
    assert repo.check(read_data=True).ok
    repo.prune()
    assert repo.check(read_data=True).ok
