"""WAL prefetch on a real PostgreSQL 15: `stashplan pg restore` leaves a spool in the data directory that a
follower keeps filled ahead of recovery; restore_command links spooled files into place. Recovery must end
exactly where the archive ends whatever the prefetch does: with a look-ahead far shorter than the WAL, with
the follower killed before the server starts (the calls then fetch and refill themselves), and with a stale
pending marker left by a dead fetcher. The spool is gone once recovery ends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stashplan.pitr.spool_names import PENDING, REFILL, SPOOL_DIR
from tests.fixtures.pitr import ArchivingPostgres

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
BASEBACKUP = "/usr/lib/postgresql/15/bin/pg_basebackup"
SEGMENTS = 9


def _history(pg: ArchivingPostgres) -> list[str]:
    """A base backup, then one committed row per WAL segment (each segment switched and archived)."""
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    pg.run(
        "pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
        "--pg-basebackup", BASEBACKUP,
    )  # fmt: skip
    names = []
    for i in range(SEGMENTS):
        names.append(f"row-{i}")
        pg.sql(f"INSERT INTO items(name) VALUES ('row-{i}')")
        pg.switch_wal()
    return names


def _rows(pg: ArchivingPostgres, port: int) -> list[str]:
    return pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=port).split(",")


def _restore(pg: ArchivingPostgres, name: str, *extra: str) -> tuple[Path, list[str]]:
    data = pg.new_dir(name)
    pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(data), *extra)
    spool = data / SPOOL_DIR
    return data, sorted(os.listdir(spool)) if spool.exists() else []


def _wait_follower(data: Path, timeout: float = 60.0) -> None:
    refill = data / SPOOL_DIR / REFILL
    deadline = time.monotonic() + timeout
    while refill.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_short_look_ahead_still_recovers_every_row_and_leaves_no_spool(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    rows = _history(pg)
    data, spooled = _restore(pg, "ahead-2", "--prefetch", "2")
    assert spooled, "pg restore fetched nothing ahead"
    conf = (data / "postgresql.auto.conf").read_text()
    assert "--spool stashplan_wal_prefetch --look-ahead 2" in conf and "recovery_end_command" in conf
    port = pg.start_restored(data)
    assert _rows(pg, port) == rows
    assert not (data / SPOOL_DIR).exists()
    log = (data.parent / f"{data.name}.log").read_text()
    assert log.count("restored log file") >= SEGMENTS


def test_recovery_goes_on_when_the_follower_is_killed_and_a_dead_fetcher_left_a_pending_marker(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    rows = _history(pg)
    data, _ = _restore(pg, "killed", "--prefetch", "3")
    spool = data / SPOOL_DIR
    refill = spool / REFILL
    if refill.exists():
        follower = int(refill.read_text())
        os.kill(follower, signal.SIGKILL)
        _wait_follower(data)
    # A marker of a fetcher that died mid-fetch, for a segment recovery needs and the spool does not hold.
    held = sorted(n for n in os.listdir(spool) if len(n) == 24)
    assert held, "pg restore fetched nothing ahead"
    later = f"{held[-1][:16]}{int(held[-1][16:], 16) + 1:08X}"
    (spool / (later + PENDING)).write_text("999999999")
    port = pg.start_restored(data)
    assert _rows(pg, port) == rows
    assert not spool.exists()


def test_a_spooled_file_is_linked_by_the_shell_and_timeline_one_history_is_answered_without_stashplan(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    _history(pg)
    data, spooled = _restore(pg, "shell")
    _wait_follower(data)
    conf = (data / "postgresql.auto.conf").read_text()
    command = next(line for line in conf.splitlines() if line.startswith("restore_command"))
    command = command.split("=", 1)[1].strip()[1:-1].replace("''", "'").replace("%%", "%")
    first, second = [n for n in spooled if len(n) == 24][:2]

    def call(name: str, dest: str, *, starts: bool = True) -> subprocess.CompletedProcess[str]:
        line = command.replace("%f", name).replace("%p", dest)
        if not starts:  # an interpreter that cannot start exits 1, as "not in the archive" would
            line = line.replace(pg.stashplan[0], "/bin/false")
        env = {k: v for k, v in pg.env().items() if k != "STASHPLAN_PASSWORD"}  # no key: a fetch would fail
        return subprocess.run(["/bin/sh", "-c", line], cwd=data, env=env, capture_output=True, text=True)

    served = call(first, "pg_wal/RECOVERYXLOG")
    assert served.returncode == 0, served.stderr
    assert (data / "pg_wal" / "RECOVERYXLOG").stat().st_nlink == 2
    assert (data / "pg_wal" / "RECOVERYXLOG").read_bytes() == (data / SPOOL_DIR / first).read_bytes()
    assert call("00000001.history", "pg_wal/RECOVERYHISTORY").returncode == 1
    missing = call("00000001000000FF00000001", "pg_wal/RECOVERYXLOG")
    assert missing.returncode == 1 and "not in the archive" in missing.stderr  # answered without the key
    (data / SPOOL_DIR / second).unlink()  # archived, not spooled: stashplan must open the repository
    needs_key = call(second, "pg_wal/RECOVERYXLOG")
    assert needs_key.returncode == 126, needs_key.stderr  # stops recovery, never "not found"
    assert "STASHPLAN_PASSWORD" in needs_key.stderr or "password" in needs_key.stderr.lower()
    broken = call("00000001000000FF00000001", "pg_wal/RECOVERYXLOG", starts=False)
    assert broken.returncode == 126, (
        broken.stderr
    )  # an interpreter that cannot start never ends recovery early
