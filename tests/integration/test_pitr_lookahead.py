"""`wal-push --spool` as a real PostgreSQL 15's archive_command: segments switched in a burst are pushed ahead by
the first call, PostgreSQL's calls for the others are answered from the spool, and every segment is in the
repository, whole (wal-verify finds no gap)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from tests.fixtures.pitr import ArchivingPostgres

pytestmark = [pytest.mark.heavy, pytest.mark.slow]


def test_a_burst_of_segments_is_pushed_ahead_and_answered_from_the_spool(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    spool = pg.new_dir("spool")
    push = " ".join(
        shlex.quote(a) for a in [*pg.stashplan, "pg", "wal-push", "-r", pg.repo, "--spool", str(spool)]
    )
    pg.pg_ctl(pg.data, "-m", "fast", "-w", "stop")
    pg.start(pg.data, pg.port, "-c wal_level=replica -c archive_mode=on", f'-c "archive_command={push} %p"')
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    segments = []
    for n in range(8):  # faster than one archive_command per segment can keep up with
        pg.sql(f"INSERT INTO items(name) VALUES ('row-{n}')")
        segments.append(pg.sql("SELECT pg_walfile_name(pg_switch_wal())"))
    for _ in range(600):
        if pg.sql("SELECT last_archived_wal FROM pg_stat_archiver") >= segments[-1]:
            break
        time.sleep(0.1)
    log = (pg.data.parent / f"{pg.data.name}.log").read_text()
    assert "ready files ahead" in log and ": pushed ahead" in log
    stored = {p.name for p in (Path(pg.repo[6:]) / "wal" / "00000001").iterdir()}
    assert set(segments) <= stored
    report = json.loads(pg.run("pg", "wal-verify", "-r", pg.repo, "--json", check=False).stdout)
    assert report["gaps"] == []
    assert pg.sql("SELECT failed_count FROM pg_stat_archiver") == "0"
