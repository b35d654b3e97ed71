"""The version matrix: backup and restore against PostgreSQL 17 (a private server from a trixie root filesystem,
tests/fixtures/pg_matrix.py) with its own client, against this machine's PostgreSQL 15 with that client too
(what the image runs), an older pg_dump than the server failing in one line, and a server newer than the
newest client refused at plan time. PostgreSQL 15 with its own client (bookworm's) and MariaDB 10.11 are
tests/integration/test_transfer_databases.py's round trips (test_postgres_backup_then_restore_into_fresh_database,
test_mariadb_backup_then_restore_into_fresh_database)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import PG_HOST, PgDatabase, PrivatePostgres
from tests.fixtures.pg_matrix import Pg17Server
from tests.fixtures.transfer import StashWorld

ROWS = ("CREATE TABLE items(id serial primary key, name text, at timestamptz default now()); "
        "INSERT INTO items(name) SELECT md5(g::text) FROM generate_series(1, 2000) g")
DIGEST = "SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items"


def _round_trip(w: StashWorld, src: PgDatabase, dst: PgDatabase, version: str, jobs: int = 1) -> None:
    """Back up `src` through its AppBinding (type and version as KubeDB writes them), change it, restore into
    `dst` over `jobs` connections; the rows must be those backed up."""
    src.sql(ROWS)
    expected = src.sql(DIGEST)
    w.appbinding("src-pg", src.url, app_type="kubedb.com/postgres", username="postgres", version=version)
    w.appbinding("dst-pg", dst.url, username="postgres")
    w.repository()
    w.backup_config("pg-backup", "src-pg")
    w.backup_session("pg-backup", "pg-backup-1")
    result = backup(w.cluster, w.namespace, "pg-backup-1", TransferOptions(database="postgres"))
    assert result.ok, result.host.error
    src.sql("UPDATE items SET name = 'changed'")
    w.restore_session("pg-restore", "dst-pg")
    restored = restore(w.cluster, w.namespace, "pg-restore", TransferOptions(database="postgres", jobs=jobs))
    assert restored.ok, restored.host.error
    assert dst.sql(DIGEST) == expected


def _client_first(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True)
    assert " 17." in done.stdout, done.stdout  # the root filesystem's client answers


def test_postgres_17_round_trip_with_its_own_client(
    stash_world: StashWorld, pg17_database: Callable[[], PgDatabase], pg17_server: Pg17Server,
    pg17_clients: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _client_first(monkeypatch, pg17_clients)
    assert pg17_server.version().startswith("17.")
    _round_trip(stash_world, pg17_database(), pg17_database(), pg17_server.version())


@pytest.mark.parametrize("jobs", [1, 2])
def test_postgres_15_round_trip_with_the_image_client_17(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase], pg17_clients: Path,
    monkeypatch: pytest.MonkeyPatch, jobs: int,
) -> None:
    """pg_dump 17 writes `SET transaction_timeout = 0;`, a setting PostgreSQL 15 does not know: the restore
    into the server the dump came from must still succeed (psql runs with ON_ERROR_STOP), serial or parallel."""
    _client_first(monkeypatch, pg17_clients)
    _round_trip(stash_world, pg_database(), pg_database(), "15", jobs)


def test_postgres_15_whole_server_round_trip_with_the_image_client_17(
    stash_world: StashWorld, private_postgres: PrivatePostgres, pg17_clients: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pg_dumpall 17 of a PostgreSQL 15 server (roles, and each database after its \\connect) restores into it."""
    _client_first(monkeypatch, pg17_clients)
    pg, w = private_postgres, stash_world
    pg.sql("CREATE ROLE app LOGIN PASSWORD 'app-pw'")
    pg.sql("CREATE DATABASE shop OWNER app")
    pg.sql("CREATE TABLE orders(id int, item text); INSERT INTO orders VALUES (1, 'tea'), (2, 'cake')", db="shop")
    w.appbinding("pg", f"postgresql://{PG_HOST}:{pg.port}/", app_type="kubedb.com/postgres", username="postgres",
                 password=pg.password, version="15")
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    done = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres"))
    assert done.ok, done.host.error
    pg.sql("DROP DATABASE shop")
    pg.sql("DROP ROLE app")
    w.restore_session("r1", "pg")
    result = restore(w.cluster, w.namespace, "r1", TransferOptions(database="postgres"))
    assert result.ok, result.error
    assert pg.sql("SELECT string_agg(item, ',' ORDER BY id) FROM orders", db="shop") == "tea,cake"
    assert pg.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'app'") == "1"


def test_an_older_pg_dump_than_the_server_fails_in_one_line_naming_both_versions(
    stash_world: StashWorld, pg17_database: Callable[[], PgDatabase], pg17_server: Pg17Server,
) -> None:
    w, src = stash_world, pg17_database()
    src.sql(ROWS)
    w.appbinding("src-pg", src.url, app_type="kubedb.com/postgres", username="postgres")
    w.repository()
    w.backup_config("pg-backup", "src-pg")
    w.backup_session("pg-backup", "pg-backup-1")
    result = backup(w.cluster, w.namespace, "pg-backup-1", TransferOptions(database="postgres"))  # bookworm's 15
    assert not result.ok
    server = re.escape(pg17_server.version())
    assert re.fullmatch(rf"pg_dump 15\.\d+ cannot dump PostgreSQL {server}: pg_dump dumps servers up to its own "
                        r"major version \(15\); run a pg_dump of 17 or newer \(the stashplan image carries 17\)",
                        result.host.error), result.host.error
    assert w.status("BackupSession", "pg-backup-1")["phase"] == "Failed"


def test_a_backup_of_a_server_newer_than_the_newest_client_is_refused_at_plan_time(tmp_path: Path) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
         "stringData": {"RESTIC_PASSWORD": "not-a-real-password"}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
         "metadata": {"name": "repo", "namespace": "demo"},
         "spec": {"backend": {"local": {"mountPath": str(tmp_path / "repo"),
                                        "hostPath": {"path": str(tmp_path / "repo")}},
                              "storageSecretName": "repo-secret"}}},
        {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
         "metadata": {"name": "pg18", "namespace": "demo"},
         "spec": {"type": "kubedb.com/postgres", "version": "18.1",
                  "clientConfig": {"url": "postgresql://127.0.0.1:5432/app"}}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
         "metadata": {"name": "nightly", "namespace": "demo"},
         "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"},
                  "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                     "name": "pg18"}},
                  "retentionPolicy": {"name": "keep", "keepLast": 3, "prune": True}}},
    ]
    manifests = tmp_path / "pg18.yaml"
    manifests.write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(app, ["plan", "-f", str(manifests), "--state", str(tmp_path / "state.db")])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: BackupConfiguration demo/nightly: AppBinding demo/pg18 spec.version is PostgreSQL 18.1, newer than "
        "the newest PostgreSQL client of the built-in addons (pg_dump 17, postgres-backup-17): pg_dump dumps "
        "servers up to its own major version"
    ], result.output
