"""MySQL/MariaDB `multiDumpArgs` on the real MariaDB server: each `$args=` part is its own dump, run one
after another into one stream and one snapshot; a failing part fails the backup and records nothing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from providers.databases import get_provider
from providers.databases.base import TaskParams
from stashplan.transfer.cli import app
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import MARIADB_HOST, MARIADB_PORT, MariaDatabase, mariadb
from tests.fixtures.transfer import StashWorld

SERVER_URL = f"mysql://{MARIADB_HOST}:{MARIADB_PORT}/"


def test_two_database_parts_make_one_snapshot_that_restores_both(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    w = stash_world
    first, second = mariadb_database(), mariadb_database()
    first.sql("CREATE TABLE t(id int primary key, v varchar(20)); INSERT INTO t VALUES (1,'a'),(2,'b')")
    second.sql("CREATE TABLE u(id int primary key, w varchar(20)); INSERT INTO u VALUES (7,'x')")
    w.appbinding("maria", SERVER_URL, username="root")
    w.repository()
    w.backup_config("multi", "maria")
    w.backup_session("multi", "multi-1")
    parts = f"$args=--databases {first.name} $args=--databases {second.name}"

    result = CliRunner().invoke(
        app,
        ["backup", "--namespace=demo", "--backupsession=multi-1", "--database=mariadb",
         "--args=--all-databases", f"--multi-dump-args={parts}"],
        env={"STASHPLAN_CLUSTER": "local", "STASHPLAN_STATE": str(w.state)},
    )

    assert result.exit_code == 0, result.output
    assert w.status("Repository", "repo")["snapshotCount"] == 1
    mariadb(f"DROP DATABASE {first.name}; DROP DATABASE {second.name}")
    w.restore_session("multi-restore", "maria")
    restored = restore(w.cluster, w.namespace, "multi-restore", TransferOptions(database="mariadb"))
    assert restored.ok, restored.host.error
    assert first.sql("SELECT group_concat(v ORDER BY id) FROM t") == "a,b"
    assert second.sql("SELECT group_concat(w) FROM u") == "x"


def test_a_failing_second_part_fails_the_backup_and_records_no_snapshot(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    w = stash_world
    db = mariadb_database()
    db.sql("CREATE TABLE t(id int primary key); INSERT INTO t VALUES (1)")
    w.appbinding("maria", SERVER_URL, username="root")
    w.repository()
    w.backup_config("multi", "maria")
    w.backup_session("multi", "multi-1")
    opts = TransferOptions(
        database="mariadb", multi_dump_args=f"$args=--databases {db.name} $args=--databases stp_no_such_db"
    )

    result = backup(w.cluster, w.namespace, "multi-1", opts)

    assert not result.ok and result.host.snapshot is None
    assert "Unknown database 'stp_no_such_db'" in result.host.error
    assert "dump 2 of 2 (mariadb-dump) exited with code 2" in result.host.error
    assert w.status("BackupSession", "multi-1")["phase"] == "Failed"
    assert w.status("Repository", "repo").get("snapshotCount", 0) == 0


def test_each_part_gets_the_connection_and_common_args_but_selects_its_own_databases(tmp_path: Path) -> None:
    provider = get_provider("mysql")
    ab = {"kind": "AppBinding", "metadata": {"name": "db", "namespace": "ns"},
          "spec": {"clientConfig": {"url": "mysql://db.local:3307/"}}}
    conn = provider.connection(ab, {"username": "root", "password": "secret pw"}, tmp_path)
    params = TaskParams.parse(
        "", "--set-gtid-purged=OFF --all-databases", "$args=--no-data --databases a  $args= --databases 'b c' "
    )
    spec = provider.dump(conn, params)
    assert spec.argv[:3] == (sys.executable, "-m", "providers.databases.sequence")
    assert spec.name == "mysqldump" and spec.env == {"MYSQL_PWD": "secret pw"}
    # --set-gtid-purged=OFF is Oracle MySQL's only; this machine's mysqldump is MariaDB's, which never writes
    # GTID_PURGED, so it is left out (providers.databases.mysql_flavour)
    common = ["mysqldump", "--host=db.local", "--user=root", "--port=3307", "--single-transaction"]
    assert json.loads(spec.argv[3]) == [
        [*common, "--no-data", "--databases", "a"],
        [*common, "--databases", "b c"],
    ]
    assert not any("secret pw" in a for a in spec.argv)
    assert provider.dump(conn, TaskParams.parse("", "", "  ")).argv[0] == "mysqldump"  # blank: one dump
