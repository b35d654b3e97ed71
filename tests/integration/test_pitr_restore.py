"""Point-in-time recovery on a real PostgreSQL 15: WAL archived by `stashplan pg wal-push` as archive_command,
a base backup streamed by `stashplan pg basebackup`, restores to a time and to an LSN into fresh data
directories that PostgreSQL recovers and promotes, holding exactly the rows committed by the target."""

from __future__ import annotations

import json
import time

import pytest

from tests.fixtures.pitr import ArchivingPostgres

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
BASEBACKUP = "/usr/lib/postgresql/15/bin/pg_basebackup"


def _basebackup(pg: ArchivingPostgres) -> dict:
    done = pg.run(
        "pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
        "--pg-basebackup", BASEBACKUP, "--json",
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def _commit(pg: ArchivingPostgres, name: str) -> None:
    pg.sql(f"INSERT INTO items(name) VALUES ('{name}')")


def _rows(pg: ArchivingPostgres, port: int) -> list[str]:
    return pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=port).split(",")


def test_restore_to_a_time_and_to_an_lsn_finds_exactly_the_rows_committed_by_the_target(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    _commit(pg, "base")
    backup = _basebackup(pg)
    assert backup["timeline"] == 1 and backup["start_lsn"] and backup["stop_lsn"]
    _commit(pg, "before-1")
    _commit(pg, "before-2")
    time.sleep(0.05)  # keep the target strictly between two commit timestamps
    target_time = pg.sql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.USZ')"
    )
    time.sleep(0.05)
    _commit(pg, "mid-1")
    target_lsn = pg.sql("SELECT pg_current_wal_lsn()")
    _commit(pg, "after-1")
    _commit(pg, "after-2")
    pg.switch_wal()

    at_time = pg.new_dir("at-time")
    done = pg.run("pg", "restore", "-r", pg.repo, "--target-time", target_time, "--pgdata", str(at_time))
    assert backup["id"][:8] in done.stdout
    assert (at_time / "recovery.signal").exists()
    assert _rows(pg, pg.start_restored(at_time)) == ["base", "before-1", "before-2"]

    at_lsn = pg.new_dir("at-lsn")
    pg.run("pg", "restore", "-r", pg.repo, "--target-lsn", target_lsn, "--pgdata", str(at_lsn))
    assert _rows(pg, pg.start_restored(at_lsn)) == ["base", "before-1", "before-2", "mid-1"]

    latest = pg.new_dir("latest")
    pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(latest))
    assert _rows(pg, pg.start_restored(latest)) == [
        "base",
        "before-1",
        "before-2",
        "mid-1",
        "after-1",
        "after-2",
    ]


def test_restore_refuses_a_target_before_the_first_base_backup_and_a_non_empty_directory(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    before = pg.sql(
        "SELECT to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SSZ')"
    )
    _basebackup(pg)
    pg.switch_wal()

    target = pg.new_dir("early")
    refused = pg.run(
        "pg", "restore", "-r", pg.repo, "--target-time", before, "--pgdata", str(target), check=False
    )
    assert refused.returncode == 1
    assert "outside the recoverable window: timeline 1: " in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1  # one line
    assert not target.exists()  # nothing written

    busy = pg.new_dir("busy")
    pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(busy))
    again = pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(busy), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_a_failed_base_backup_records_no_snapshot_and_names_the_cause(archiving_postgres: ArchivingPostgres) -> None:
    pg = archiving_postgres
    env_password, pg.password = pg.password, "wrong-" + pg.password
    try:
        failed = pg.run(
            "pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
            "--pg-basebackup", BASEBACKUP, check=False,
        )  # fmt: skip
    finally:
        pg.password = env_password
    assert failed.returncode == 1
    assert "pg_basebackup exited with code 1" in failed.stderr and "password authentication failed" in failed.stderr
    assert env_password not in failed.stderr
    assert pg.run("repo", "snapshots", "-r", pg.repo, "--json").stdout.strip() in ("[]", "")
