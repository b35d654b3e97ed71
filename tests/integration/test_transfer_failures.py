"""Transfer failures end as a Failed session with a clear message, and never as a snapshot."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from providers.storage import storage_from_repository
from stashplan.objects import rfc3339
from stashplan.repository import Repository
from stashplan.repository.locks import Lock
from stashplan.transfer.run import TransferOptions, TransferResult, backup, restore
from tests.fixtures.databases import PG_HOST, PgDatabase, PrivatePostgres, free_port
from tests.fixtures.s3 import S3Endpoint
from tests.fixtures.transfer import REPO_PASSWORD, StashWorld


def snapshots(w: StashWorld, repo: str = "repo") -> list[str]:
    obj = w.cluster.get("Repository", w.namespace, repo)
    storage = storage_from_repository(obj, {"RESTIC_PASSWORD": REPO_PASSWORD})
    with Repository.open_or_init(storage, REPO_PASSWORD) as r:
        return [s.id for s in r.snapshots()]


def assert_failed(w: StashWorld, session: str, result: TransferResult, message: str) -> None:
    assert not result.ok
    status = w.status("BackupSession", session)
    assert status["phase"] == "Failed"
    host = status["targets"][0]["stats"][0]
    assert host["phase"] == "Failed" and "snapshots" not in host
    assert message in host["error"], host["error"]
    assert status["targets"][0]["phase"] == "Failed"
    failed = [e for e in w.events(session) if e["reason"] == "BackupSession Failed"]
    assert failed and failed[0]["type"] == "Warning" and message in failed[0]["message"]


def test_server_stopped_halfway_through_the_dump_fails_without_snapshot(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    pg, w = private_postgres, stash_world
    pg.sql(
        "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS payload "
        "FROM generate_series(1, 400000) g"
    )
    w.appbinding(
        "pg", f"postgresql://{PG_HOST}:{pg.port}/postgres", username="postgres", password=pg.password
    )
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    stopped = threading.Event()

    def stop_server_mid_copy() -> None:
        for _ in range(500):
            active = pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.big%'")
            if active == "1":
                pg.stop("immediate")
                stopped.set()
                return
            time.sleep(0.01)

    stopper = threading.Thread(target=stop_server_mid_copy)
    stopper.start()
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    stopper.join()
    assert stopped.is_set(), "the dump finished before the server could be stopped"
    assert_failed(w, "s1", result, "pg_dump exited with code 1")
    assert (
        "server closed the connection" in result.host.error or "terminating connection" in result.host.error
    )
    assert snapshots(w) == []


def test_missing_table_privilege_fails_with_server_message(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    pg, w = private_postgres, stash_world
    pg.sql(
        "CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; CREATE TABLE open_t(a int); "
        "CREATE TABLE closed_t(a int); GRANT SELECT ON open_t TO reader"
    )
    w.appbinding("pg", f"postgresql://{PG_HOST}:{pg.port}/postgres", username="reader", password="reader-pw")
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    assert_failed(w, "s1", result, "permission denied for table closed_t")
    assert snapshots(w) == []


def test_wrong_database_password_fails_with_clear_message(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    w = stash_world
    w.appbinding(
        "pg",
        f"postgresql://{PG_HOST}:{private_postgres.port}/postgres",
        username="postgres",
        password="not-the-password",
    )
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    assert_failed(w, "s1", result, 'password authentication failed for user "postgres"')
    assert "not-the-password" not in str(w.status("BackupSession", "s1"))
    assert snapshots(w) == []


def test_unreachable_repository_fails_the_session(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase], s3_endpoint: S3Endpoint
) -> None:
    w = stash_world
    db = pg_database()
    w.appbinding("pg", db.url, username="postgres")
    closed = f"http://127.0.0.1:{free_port()}"
    w.repository(
        backend={"s3": {"endpoint": closed, "bucket": "nowhere", "prefix": "x"}}, secret=s3_endpoint.env()
    )
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    assert_failed(w, "s1", result, f"127.0.0.1:{closed.rsplit(':', 1)[1]}")
    assert w.status("Repository", "repo") == {}


@pytest.mark.parametrize("source", ["sessionDeadline", "timeOut"])
def test_deadline_exceeded_kills_the_dump_and_fails(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase], source: str
) -> None:
    w = stash_world
    db = pg_database()
    db.sql("CREATE TABLE t(a int)")
    lock = "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);"
    blocker = subprocess.Popen(
        ["psql", "-h", PG_HOST, "-U", "postgres", "-d", db.name, "-c", lock],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    locked = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 't'::regclass"
    try:
        while db.sql(locked) != "1":
            time.sleep(0.02)
        w.appbinding("pg", db.url, username="postgres")
        w.repository()
        if source == "timeOut":  # no deadline in the status: the invoker's timeOut from creation
            w.backup_config("cfg", "pg", timeout="3s")
            w.backup_session("cfg", "s1")
        else:
            w.backup_config("cfg", "pg")
            w.backup_session("cfg", "s1", deadline=rfc3339(datetime.now(UTC) + timedelta(seconds=2)))
        start = time.monotonic()
        result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
        assert time.monotonic() - start < 10
    finally:
        blocker.kill()
        blocker.wait()
    assert_failed(w, "s1", result, "deadline exceeded: pg_dump was killed")
    assert snapshots(w) == []


def test_session_already_past_its_deadline_fails_without_dumping(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    w.appbinding("pg", pg_database().url, username="postgres")
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1", deadline=rfc3339(datetime.now(UTC) - timedelta(seconds=5)))
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    assert_failed(w, "s1", result, "deadline exceeded: session deadline")
    assert snapshots(w) == []


def test_restore_from_damaged_repository_fails_and_leaves_target_untouched(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    src, dst = pg_database(), pg_database()
    src.sql("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
    w.appbinding("src", src.url, username="postgres")
    w.appbinding("dst", dst.url, username="postgres")
    w.repository()
    w.backup_config("cfg", "src")
    w.backup_session("cfg", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres")).ok
    for pack in (w.root / "repo").rglob("data/**/*"):
        if pack.is_file():
            pack.unlink()
    w.restore_session("r1", "dst")
    result = restore(w.cluster, w.namespace, "r1", TransferOptions(database="postgres"))
    assert not result.ok
    status = w.status("RestoreSession", "r1")
    assert status["phase"] == "Failed" and status["stats"][0]["phase"] == "Failed"
    assert status["stats"][0]["error"]
    assert {e["reason"] for e in w.events("r1")} == {"Host Restore Failed", "RestoreSession Failed"}
    assert dst.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"


def test_retention_blocked_by_another_sessions_lock_is_deferred_and_the_session_succeeds(
    stash_world: StashWorld, sqlite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stashplan.transfer import post

    monkeypatch.setattr(post, "MAINTENANCE_LOCK_WAIT", 1.0)
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    repo_obj = w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    storage = storage_from_repository(repo_obj, {"RESTIC_PASSWORD": REPO_PASSWORD})
    Repository.init(storage, REPO_PASSWORD).close()
    holder = Lock(storage, exclusive=False, operation="restore").acquire()
    try:
        result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite"))
    finally:
        holder.release()
    assert result.ok, result.error
    status = w.status("BackupSession", "s1")
    assert status["phase"] == "Succeeded"
    cond = w.condition("BackupSession", "s1", "RetentionPolicyApplied")
    assert cond["status"] == "Unknown" and cond["reason"] == "RetentionPolicyDeferred"
    assert "locked" in cond["message"]
    assert w.condition("BackupSession", "s1", "RepositoryIntegrityVerified")["status"] == "True"
    assert len(snapshots(w)) == 1


def test_retention_waits_for_another_sessions_prune_and_then_applies(
    stash_world: StashWorld, sqlite_file: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    repo_obj = w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    storage = storage_from_repository(repo_obj, {"RESTIC_PASSWORD": REPO_PASSWORD})
    Repository.init(storage, REPO_PASSWORD).close()
    # Another BackupConfiguration's session is pruning the shared repository for a moment.
    other = Lock(storage, exclusive=True, operation="prune").acquire()
    timer = threading.Timer(2.0, other.release)
    timer.start()
    try:
        result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite"))
    finally:
        timer.join()
    assert result.ok, result.error
    assert w.condition("BackupSession", "s1", "RetentionPolicyApplied")["status"] == "True"
    assert len(snapshots(w)) == 1


def test_restore_from_a_repository_that_was_never_initialised_fails_and_creates_nothing(
    stash_world: StashWorld, tmp_path: Path
) -> None:
    w = stash_world
    w.appbinding("new-db", f"sqlite://{tmp_path}/new.db")
    w.repository()
    w.restore_session("r1", "new-db")
    result = restore(w.cluster, w.namespace, "r1", TransferOptions(database="sqlite"))
    assert not result.ok and "no repository at" in result.error
    assert w.status("RestoreSession", "r1")["phase"] == "Failed"
    assert not (w.root / "repo").exists() and not (tmp_path / "new.db").exists()


def test_repository_write_failure_mid_dump_kills_the_dump(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    pg, w = private_postgres, stash_world
    pg.sql(
        "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 8) AS payload FROM generate_series(1, 400000) g"
    )
    w.appbinding(
        "pg", f"postgresql://{PG_HOST}:{pg.port}/postgres", username="postgres", password=pg.password
    )
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    data = w.root / "repo" / "data"
    broken = threading.Event()

    def break_storage_mid_copy() -> None:
        for _ in range(500):
            if pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.big%'") == "1":
                shutil.rmtree(data, ignore_errors=True)
                data.write_text("not a directory")  # every later pack upload fails
                broken.set()
                return
            time.sleep(0.01)

    breaker = threading.Thread(target=break_storage_mid_copy)
    breaker.start()
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    breaker.join()
    assert broken.is_set(), "the dump finished before the storage could be broken"
    assert_failed(w, "s1", result, "Not a directory")  # the writer's error, not the killed dump's
    for _ in range(250):  # the killed pg_dump's server backend goes away
        if pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.big%'") == "0":
            break
        time.sleep(0.02)
    else:
        pytest.fail("pg_dump kept running after the repository writer failed")
    assert list((w.root / "repo" / "snapshots").glob("*")) == []
