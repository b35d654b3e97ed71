"""Timelines on a real PostgreSQL 15: a restore to a point promotes onto timeline 2 and keeps archiving
(00000002.history included) while the old primary goes on along timeline 1; from the one base backup, taken
on timeline 1, a restore to a time on timeline 2 holds timeline 2's rows, and `--target-timeline 1` the
old primary's (with `--archive-mode off`, it archives nothing, though its configuration files archive). `wal-verify` shows timeline 2's history and window; the history file pushed again is a no-op,
another under its name is refused, and without it `wal-verify` reports the broken chain."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fixtures.pitr import ArchivingPostgres

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
BASEBACKUP = "/usr/lib/postgresql/15/bin/pg_basebackup"
NOW = "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.USZ')"


def _rows(pg: ArchivingPostgres, port: int) -> list[str]:
    return pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=port).split(",")


def _commit(pg: ArchivingPostgres, name: str, port: int | None = None) -> None:
    pg.sql(f"INSERT INTO items(name) VALUES ('{name}')", port=port)


def _between_commits(pg: ArchivingPostgres, port: int | None = None) -> str:
    time.sleep(0.05)  # keep the target strictly between two commit timestamps
    at = pg.sql(NOW, port=port)
    time.sleep(0.05)
    return at


def test_a_restore_to_a_time_on_timeline_2_starts_from_a_base_backup_of_timeline_1(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id int PRIMARY KEY, name text NOT NULL)")
    pg.sql("INSERT INTO items VALUES (1, 'base')")
    # As most servers are set up: archiving in the configuration files, which base backups carry along.
    pg.sql("ALTER SYSTEM SET archive_mode = 'on'")
    pg.sql(f"ALTER SYSTEM SET archive_command = '{pg.archive_command.replace(chr(39), chr(39) * 2)}'")
    pg.run(
        "pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
        "--pg-basebackup", BASEBACKUP,
    )  # fmt: skip
    pg.sql("INSERT INTO items VALUES (2, 'tl1-a')")
    branch_at = _between_commits(pg)
    pg.sql("INSERT INTO items VALUES (3, 'tl1-b')")
    pg.switch_wal()

    # The restore to a point promotes onto timeline 2 and archives into the same repository.
    branch = pg.new_dir("branch")
    pg.run("pg", "restore", "-r", pg.repo, "--target-time", branch_at, "--pgdata", str(branch))
    port2 = pg.start_restored(branch, archiving=True)
    assert pg.sql("SELECT timeline_id FROM pg_control_checkpoint()", port=port2) == "2"
    pg.sql("INSERT INTO items VALUES (10, 'tl2-a')", port=port2)
    on_tl2 = _between_commits(pg, port2)
    pg.sql("INSERT INTO items VALUES (11, 'tl2-b')", port=port2)
    assert pg.switch_wal(port2).startswith("00000002")
    pg.sql("INSERT INTO items VALUES (4, 'tl1-c')")  # the old primary goes on along timeline 1
    pg.switch_wal()

    report = json.loads(pg.run("pg", "wal-verify", "-r", pg.repo, "--json").stdout)
    assert report["gaps"] == [] and report["history_problems"] == []
    assert "00000002.history" in report["other_files"]
    assert report["timelines"]["2"].startswith("1 -> 2 at ")
    assert [w["timeline"] for w in report["windows"]] == [1, 2]
    assert report["windows"][1]["history"] == report["timelines"]["2"]

    at_tl2 = pg.new_dir("at-tl2")
    done = pg.run("pg", "restore", "-r", pg.repo, "--target-time", on_tl2, "--pgdata", str(at_tl2))
    assert "recovery_target_timeline = '2'" in done.stdout
    assert _rows(pg, pg.start_restored(at_tl2)) == ["base", "tl1-a", "tl2-a"]

    # A copy restored with --archive-mode off archives nothing, whatever its configuration files say.
    old_line = pg.new_dir("old-line")
    pg.run(
        "pg", "restore", "-r", pg.repo, "--latest", "--target-timeline", "1", "--archive-mode", "off",
        "--pgdata", str(old_line),
    )  # fmt: skip
    port3 = pg.start_restored(old_line, archiving=None)
    assert _rows(pg, port3) == ["base", "tl1-a", "tl1-b", "tl1-c"]
    assert pg.sql("SHOW archive_mode", port=port3) == "off"
    assert pg.sql("SELECT timeline_id FROM pg_control_checkpoint()", port=port3) == "3"

    # The history file again is a no-op; another one under its name is refused; without it the chain breaks.
    history = branch / "pg_wal" / "00000002.history"
    again = pg.run("pg", "wal-push", "-r", pg.repo, str(history))
    assert "already archived (same content)" in again.stderr
    forged = pg.new_dir("forged")
    forged.mkdir()
    (forged / history.name).write_text("1\t0/1000000\tsomething else\n")
    refused = pg.run("pg", "wal-push", "-r", pg.repo, str(forged / history.name), check=False)
    assert refused.returncode == 1 and "already holds a different file" in refused.stderr
    (Path(pg.repo[6:]) / "wal" / "00000002" / history.name).unlink()
    verify = pg.run("pg", "wal-verify", "-r", pg.repo, check=False)
    assert verify.returncode == 1
    assert "history: timeline 2: 00000002.history is not archived" in verify.stdout
