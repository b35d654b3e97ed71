"""WAL retention on a real PostgreSQL 15: `stashplan pg forget --keep-last 1` forgets the older base backup and
deletes the WAL only it needed (its `.backup` file too), keeps everything from the kept one's start on, and a
restore to the latest WAL still holds every row; with no base backup kept, no WAL is deleted."""

from __future__ import annotations

import json
from pathlib import Path

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


def _archived(pg: ArchivingPostgres) -> set[str]:
    return {p.name for p in (Path(pg.repo[6:]) / "wal").rglob("*") if p.is_file()}


def test_forget_deletes_the_wal_only_forgotten_base_backups_needed(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    first = _basebackup(pg)
    pg.sql("INSERT INTO items(name) VALUES ('one')")
    pg.switch_wal()
    pg.sql("INSERT INTO items(name) VALUES ('two')")
    pg.switch_wal()
    second = _basebackup(pg)
    pg.sql("INSERT INTO items(name) VALUES ('three')")
    pg.switch_wal()
    before = _archived(pg)
    keep_from = second["start_lsn"]
    first_kept = f"00000001{int(keep_from.split('/')[0], 16):08X}{int(keep_from.split('/')[1], 16) >> 24:08X}"

    dry = json.loads(pg.run("pg", "forget", "-r", pg.repo, "--keep-last", "1", "--dry-run", "--json").stdout)
    assert [b["id"] for b in dry["removed"]] == [first["id"]] and _archived(pg) == before

    done = json.loads(pg.run("pg", "forget", "-r", pg.repo, "--keep-last", "1", "--json").stdout)
    assert [b["id"] for b in done["kept"]] == [second["id"]]
    gone = set(done["wal_deleted"])
    assert gone and gone == before - _archived(pg)
    assert all(name[:24] < first_kept for name in gone)  # nothing from the kept backup's start segment on
    assert any(name.endswith(".backup") for name in gone)  # the first backup's history file went with it
    assert first_kept in _archived(pg)

    verify = json.loads(pg.run("pg", "wal-verify", "-r", pg.repo, "--json").stdout)
    assert verify["gaps"] == [] and [w["base_backups"] for w in verify["windows"]] == [[second["id"]]]
    latest = pg.new_dir("latest")
    pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(latest))
    rows = pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=pg.start_restored(latest))
    assert rows == "one,two,three"

    # Base backups forgotten by `repo forget`: with none left, `pg forget` deletes no WAL.
    pg.run("repo", "forget", "-r", pg.repo, "--keep-tag", "no-such-tag")
    left = json.loads(pg.run("pg", "forget", "-r", pg.repo, "--json").stdout)
    assert left["kept"] == [] and left["wal_deleted"] == []
    assert first_kept in _archived(pg)
