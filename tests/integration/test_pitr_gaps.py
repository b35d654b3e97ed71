"""A segment missing from the archive, on a real PostgreSQL 15: `stashplan pg wal-verify` reports the gap and
the window that ends before it, and a restore to a time after the gap is refused with the window printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.pitr import ArchivingPostgres

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
BASEBACKUP = "/usr/lib/postgresql/15/bin/pg_basebackup"


def test_a_deleted_segment_is_reported_by_wal_verify_and_makes_restore_refuse_with_the_window(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    pg.run(
        "pg",
        "basebackup",
        "-r",
        pg.repo,
        "--host",
        "127.0.0.1",
        "--port",
        str(pg.port),
        "--pg-basebackup",
        BASEBACKUP,
    )
    segments = []
    for n in range(3):
        pg.sql(f"INSERT INTO items(name) VALUES ('row-{n}')")
        segments.append(pg.switch_wal())
    whole = pg.run("pg", "wal-verify", "-r", pg.repo, "--json")
    assert json.loads(whole.stdout)["gaps"] == []
    assert any(name.endswith(".backup") for name in json.loads(whole.stdout)["other_files"])
    after_gap = pg.sql(
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.USZ')"
    )
    pg.sql("INSERT INTO items(name) VALUES ('row-late')")
    pg.switch_wal()

    lost = segments[1]
    (Path(pg.repo[6:]) / "wal" / lost[:8] / lost).unlink()

    verify = pg.run("pg", "wal-verify", "-r", pg.repo, check=False)
    assert verify.returncode == 1
    assert f"gap: timeline 1: segment {lost} is missing" in verify.stdout
    report = json.loads(pg.run("pg", "wal-verify", "-r", pg.repo, "--json", check=False).stdout)
    (window,) = report["windows"]
    assert (
        window["end_lsn"] == f"{int(lost[8:16], 16):X}/{int(lost[16:], 16) << 24:X}"
    )  # ends where the gap begins

    target = pg.new_dir("after-gap")
    refused = pg.run(
        "pg", "restore", "-r", pg.repo, "--target-time", after_gap, "--pgdata", str(target), check=False
    )
    assert refused.returncode == 1
    assert "outside the recoverable window: timeline 1: " in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1  # one line
    assert window["end_lsn"] in refused.stderr
    assert not target.exists()
