"""`stashplan transfer backup|restore` end to end per database: backup, change data, restore into a fresh
database, compare; plus the statuses, Repository status and Events the transfer records."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import PG_HOST, MariaDatabase, PgDatabase, PrivatePostgres, RedisInstance
from tests.fixtures.transfer import StashWorld


def test_postgres_backup_then_restore_into_fresh_database(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    src, dst = pg_database(), pg_database()
    src.sql(
        "CREATE TABLE items(id serial primary key, name text, at timestamptz default now()); "
        "INSERT INTO items(name) SELECT md5(g::text) FROM generate_series(1, 2000) g"
    )
    expected = src.sql("SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items")
    w.appbinding("src-pg", src.url, app_type="kubedb.com/postgres", username="postgres")
    w.appbinding("dst-pg", dst.url, username="postgres")
    w.repository()
    w.backup_config("pg-backup", "src-pg", keep_last=5)
    w.backup_session("pg-backup", "pg-backup-1")

    result = backup(w.cluster, w.namespace, "pg-backup-1", TransferOptions(database="postgres"))

    assert result.ok, result.host.error
    status = w.status("BackupSession", "pg-backup-1")
    assert status["phase"] == "Succeeded" and status["sessionDuration"].endswith("s")
    target = status["targets"][0]
    assert target["phase"] == "Succeeded" and target["totalHosts"] == 1
    assert target["ref"]["name"] == "src-pg"
    host = target["stats"][0]
    assert host["hostname"] == "host-0" and host["phase"] == "Succeeded" and "error" not in host
    snap = host["snapshots"][0]
    assert snap["name"] == result.host.snapshot.short_id  # type: ignore[union-attr]
    assert snap["totalSize"].endswith("KiB") and snap["uploaded"] and snap["processingTime"].endswith("s")
    assert w.condition("BackupSession", "pg-backup-1", "RetentionPolicyApplied")["status"] == "True"
    assert w.condition("BackupSession", "pg-backup-1", "RepositoryIntegrityVerified")["status"] == "True"
    repo_status = w.status("Repository", "repo")
    assert repo_status["snapshotCount"] == 1 and repo_status["integrity"] is True
    assert repo_status["lastBackupTime"] and repo_status["firstBackupTime"]
    reasons = {(e["reason"], e["type"]) for e in w.events("pg-backup-1")}
    assert reasons == {("Host Backup Succeeded", "Normal"), ("BackupSession Succeeded", "Normal")}

    src.sql("UPDATE items SET name = 'changed'")
    w.restore_session("pg-restore", "dst-pg")
    restored = restore(w.cluster, w.namespace, "pg-restore", TransferOptions(database="postgres"))

    assert restored.ok, restored.host.error
    assert dst.sql("SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items") == expected
    rstatus = w.status("RestoreSession", "pg-restore")
    assert rstatus["phase"] == "Succeeded" and rstatus["totalHosts"] == 1
    assert rstatus["stats"][0]["phase"] == "Succeeded"
    assert {e["reason"] for e in w.events("pg-restore")} == {
        "Host Restore Succeeded",
        "RestoreSession Succeeded",
    }


def test_retention_keeps_last_n_snapshots_and_repository_status_counts_them(
    stash_world: StashWorld, tmp_path: Path, sqlite_file: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.repository()
    w.backup_config("db-backup", "app-db", keep_last=2, prune=True)
    for i in range(3):
        subprocess.run(
            ["sqlite3", str(sqlite_file), f"INSERT INTO items(name) VALUES ('run-{i}')"], check=True
        )
        w.backup_session("db-backup", f"db-backup-{i}")
        assert backup(w.cluster, w.namespace, f"db-backup-{i}", TransferOptions(database="sqlite")).ok
    cond = w.condition("BackupSession", "db-backup-2", "RetentionPolicyApplied")
    assert cond["reason"] == "SuccessfullyAppliedRetentionPolicy"
    assert "kept 2, removed 1" in cond["message"]
    repo_status = w.status("Repository", "repo")
    assert repo_status["snapshotCount"] == 2 and repo_status["snapshotsRemovedOnLastCleanup"] == 1


def test_sqlite_restore_of_a_named_snapshot_into_a_new_file(
    stash_world: StashWorld, tmp_path: Path, sqlite_file: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    target = tmp_path / "restored.db"
    w.appbinding("new-db", f"sqlite://{target}")
    w.repository()
    w.backup_config("db-backup", "app-db")
    w.backup_session("db-backup", "first")
    first = backup(w.cluster, w.namespace, "first", TransferOptions(database="sqlite"))
    subprocess.run(["sqlite3", str(sqlite_file), "INSERT INTO items(name) VALUES ('delta')"], check=True)
    w.backup_session("db-backup", "second")
    assert backup(w.cluster, w.namespace, "second", TransferOptions(database="sqlite")).ok
    snap_id = w.status("BackupSession", "first")["targets"][0]["stats"][0]["snapshots"][0]["name"]
    assert first.host.snapshot is not None and snap_id == first.host.snapshot.short_id

    w.restore_session("restore-first", "new-db", snapshots=[snap_id])
    assert restore(w.cluster, w.namespace, "restore-first", TransferOptions(database="sqlite")).ok
    rows = subprocess.run(
        ["sqlite3", str(target), "SELECT group_concat(name) FROM items"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert rows == "alpha,beta,gamma"


@pytest.mark.parametrize("jobs", [1, 2])
def test_mariadb_backup_then_restore_into_fresh_database(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase], jobs: int
) -> None:
    w = stash_world
    src, dst = mariadb_database(), mariadb_database()
    src.sql("CREATE TABLE t(id int primary key, v varchar(20)); INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c');"
            "CREATE TABLE u(id int primary key); INSERT INTO u VALUES (7)")
    w.appbinding("src-maria", src.url, username="root")
    w.appbinding("dst-maria", dst.url, username="root")
    w.repository()
    w.backup_config("maria-backup", "src-maria")
    w.backup_session("maria-backup", "maria-1")
    assert backup(w.cluster, w.namespace, "maria-1", TransferOptions(database="mariadb")).ok
    src.sql("DELETE FROM t WHERE id = 2")
    w.restore_session("maria-restore", "dst-maria")
    result = restore(w.cluster, w.namespace, "maria-restore", TransferOptions(database="mariadb", jobs=jobs))
    assert result.ok, result.host.error
    assert dst.sql("SELECT group_concat(v ORDER BY id) FROM t") == "a,b,c"
    assert dst.sql("SELECT id FROM u") == "7"


def test_redis_backup_then_restore_into_fresh_db_number(
    stash_world: StashWorld, redis_instance: RedisInstance
) -> None:
    w, r = stash_world, redis_instance
    for i in range(50):
        r.cmd("SET", f"key:{i}", f"value-{i}", db=2)
    r.cmd("ZADD", "scores", "1", "ada", "2", "bob", db=2)
    w.appbinding("src-redis", r.url(2))
    w.appbinding("dst-redis", r.url(9))
    w.repository()
    w.backup_config("redis-backup", "src-redis")
    w.backup_session("redis-backup", "redis-1")
    assert backup(w.cluster, w.namespace, "redis-1", TransferOptions(database="redis")).ok
    r.cmd("FLUSHDB", db=2)
    w.restore_session("redis-restore", "dst-redis")
    result = restore(w.cluster, w.namespace, "redis-restore", TransferOptions(database="redis"))
    assert result.ok, result.host.error
    assert r.cmd("DBSIZE", db=9) == "51"
    assert r.cmd("GET", "key:42", db=9) == "value-42"
    assert r.cmd("ZRANGE", "scores", "0", "-1", db=9).split() == ["ada", "bob"]


def test_postgres_whole_cluster_restore_keeps_the_current_superuser_password(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    pg, w = private_postgres, stash_world
    pg.sql("CREATE ROLE app LOGIN PASSWORD 'app-pw'")
    pg.sql("CREATE DATABASE shop OWNER app")
    pg.sql(
        "CREATE TABLE orders(id int, item text); INSERT INTO orders VALUES (1, 'tea'), (2, 'cake')", db="shop"
    )
    url = f"postgresql://{PG_HOST}:{pg.port}/"  # no database: pg_dumpall of the whole cluster
    w.appbinding("pg", url, username="postgres", password=pg.password)
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres")).ok

    pg.sql("DROP DATABASE shop")
    pg.sql("DROP ROLE app")
    pg.sql("ALTER ROLE postgres PASSWORD 'rotated-pw'")
    pg.password = "rotated-pw"
    w.appbinding("pg-now", url, username="postgres", password="rotated-pw")
    w.restore_session("r1", "pg-now")
    result = restore(w.cluster, w.namespace, "r1", TransferOptions(database="postgres"))

    assert result.ok, result.error
    assert pg.sql("SELECT string_agg(item, ',' ORDER BY id) FROM orders", db="shop") == "tea,cake"
    assert pg.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'app'") == "1"
    assert pg.sql("SELECT 1") == "1"  # still reachable with the rotated password


def test_postgres_whole_cluster_restore_into_a_server_that_still_has_the_roles(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    pg, w = private_postgres, stash_world
    pg.sql("CREATE ROLE reporting LOGIN PASSWORD 'r-pw'")
    pg.sql("CREATE DATABASE ledger OWNER reporting")
    pg.sql("CREATE TABLE entries(id int, amount int); INSERT INTO entries VALUES (1, 10), (2, 32)", db="ledger")
    url = f"postgresql://{PG_HOST}:{pg.port}/"
    w.appbinding("pg", url, username="postgres", password=pg.password)
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres")).ok

    pg.sql("DROP DATABASE ledger")  # the database is lost; its role is still there
    w.restore_session("r1", "pg")
    result = restore(w.cluster, w.namespace, "r1", TransferOptions(database="postgres"))

    assert result.ok, result.error
    assert pg.sql("SELECT sum(amount) FROM entries", db="ledger") == "42"


def test_postgres_whole_cluster_restore_refuses_to_overwrite_an_existing_database(
    stash_world: StashWorld, private_postgres: PrivatePostgres
) -> None:
    pg, w = private_postgres, stash_world
    pg.sql("CREATE DATABASE keepme")
    pg.sql("CREATE TABLE t(v text); INSERT INTO t VALUES ('original')", db="keepme")
    url = f"postgresql://{PG_HOST}:{pg.port}/"
    w.appbinding("pg", url, username="postgres", password=pg.password)
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres")).ok
    pg.sql("UPDATE t SET v = 'changed since'", db="keepme")

    w.restore_session("r1", "pg")
    result = restore(w.cluster, w.namespace, "r1", TransferOptions(database="postgres"))

    assert not result.ok
    assert 'database "keepme" already exists' in (result.error or "")
    assert pg.sql("SELECT v FROM t", db="keepme") == "changed since"  # nothing overwritten


def test_long_transfers_log_progress_lines_in_the_job_log(
    stash_world: StashWorld, tmp_path: Path, sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.appbinding("new-db", f"sqlite://{tmp_path / 'restored.db'}")
    w.repository()
    w.backup_config("db-backup", "app-db")
    w.backup_session("db-backup", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite", progress_every=0)).ok
    w.restore_session("r1", "new-db")
    assert restore(w.cluster, w.namespace, "r1", TransferOptions(database="sqlite", progress_every=0)).ok
    err = capsys.readouterr().err
    assert re.search(rf"backup {w.namespace}/s1: \d+(\.\d)? (B|KiB) done, [\d.]+ \S+/s", err), err
    assert re.search(r"restore of snapshot [0-9a-f]{8}: \d+(\.\d)? (B|KiB) done", err), err  # latest, resolved
