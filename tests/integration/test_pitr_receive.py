"""`stashplan pg wal-receive` on a real PostgreSQL 15 that does not archive: pg_receivewal streams over a slot
it creates; completed segments land in the repository, the partial one follows every interval (so the window
reaches the last commit without a segment switch), the slot's lag reaches the Pushgateway; killed, it takes
pg_receivewal with it and, started again, resumes without a gap; SIGTERM stops it after a last push, and a
restore to the latest WAL holds every committed row."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stashplan.pitr.walnames import parse_lsn
from tests.fixtures.databases import PG_BIN
from tests.fixtures.pitr import ArchivingPostgres
from tests.fixtures.pushgateway import read_metrics

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
SLOT = "stashplan_test"


def _rows(pg: ArchivingPostgres, port: int) -> list[str]:
    return pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=port).split(",")


def _receiver_pid(proc: subprocess.Popen[str]) -> int:
    """The stashplan process itself (runuser, when the tests run as root, is its parent)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    for _ in range(100):
        if proc.args[0] != "runuser":
            return proc.pid
        if pids := children.read_text().split():
            return int(pids[0])
        time.sleep(0.05)
    raise AssertionError("wal-receive did not start")


def _wait(what: str, check: Callable[[], bool], proc: subprocess.Popen[str], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"wal-receive exited {proc.returncode} while waiting for {what}: {err}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _window_end(pg: ArchivingPostgres) -> int:
    report = json.loads(pg.run("pg", "wal-verify", "-r", pg.repo, "--json", check=False).stdout)
    return max((parse_lsn(w["end_lsn"]) for w in report["windows"]), default=0)


def _kill(proc: subprocess.Popen[str], sig: str) -> None:
    """Signal the stashplan process itself (not runuser, which would leave it running)."""
    subprocess.run(["kill", f"-{sig}", str(_receiver_pid(proc))], check=False)


def test_wal_receive_streams_into_the_repository_and_a_restore_to_latest_has_the_last_commits(
    streaming_postgres: ArchivingPostgres, pushgateway: str
) -> None:
    pg = streaming_postgres
    receive = (
        "pg", "wal-receive", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port), "--slot", SLOT,
        "--directory", str(pg.new_dir("received")), "--partial-interval", "0.5",
        "--pg-receivewal", str(PG_BIN / "pg_receivewal"), "--psql", str(PG_BIN / "psql"),
        "--pushgateway-url", pushgateway,
    )  # fmt: skip
    active = f"SELECT active FROM pg_replication_slots WHERE slot_name = '{SLOT}'"
    proc = pg.spawn(*receive)
    try:
        _wait("the slot to be created and streamed from", lambda: pg.sql(active) == "t", proc)
        pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
        pg.run(
            "pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
            "--pg-basebackup", str(PG_BIN / "pg_basebackup"),
        )  # fmt: skip
        pg.sql("INSERT INTO items(name) VALUES ('before-switch')")
        switched = pg.sql("SELECT pg_walfile_name(pg_switch_wal())")
        pg.sql("INSERT INTO items(name) VALUES ('in-partial')")  # no segment switch after this one
        lsn = parse_lsn(pg.sql("SELECT pg_current_wal_lsn()"))
        stored = Path(pg.repo[6:]) / "wal" / switched[:8] / switched
        _wait(f"segment {switched} in the repository", stored.exists, proc)
        _wait("the partial segment to reach the last commit", lambda: _window_end(pg) >= lsn, proc)
        metrics = read_metrics(pushgateway)
        assert f'stashplan_pg_wal_receive_slot_lag_bytes{{host="127.0.0.1:{pg.port}"' in metrics
        assert f'slot="{SLOT}"' in metrics

        # Killed outright, it takes pg_receivewal with it (the slot goes idle, keeping the WAL) ...
        _kill(proc, "KILL")
        proc.wait(30)
        for _ in range(300):
            if pg.sql(active) == "f":
                break
            time.sleep(0.1)
        assert pg.sql(active) == "f", "pg_receivewal outlived wal-receive"
        pg.sql("INSERT INTO items(name) VALUES ('while-down')")
        pg.sql("SELECT pg_switch_wal()")
        # ... and started again, it resumes from its directory: no gap.
        proc = pg.spawn(*receive)
        pg.sql("INSERT INTO items(name) VALUES ('at-stop')")
        lsn = parse_lsn(pg.sql("SELECT pg_current_wal_lsn()"))
        confirmed = f"SELECT active AND restart_lsn >= '{pg.sql('SELECT pg_current_wal_lsn()')}' FROM pg_replication_slots"
        _wait("pg_receivewal to confirm the last commit", lambda: pg.sql(confirmed) == "t", proc)
        _kill(proc, "TERM")
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "the partial segment is pushed" in err
    finally:
        if proc.poll() is None:
            _kill(proc, "KILL")
            proc.kill()
            proc.wait()
    assert _window_end(pg) >= lsn  # the last push, at the stop, reached the last commit
    verify = json.loads(pg.run("pg", "wal-verify", "-r", pg.repo, "--json").stdout)
    assert verify["gaps"] == [] and len(verify["windows"]) == 1

    latest = pg.new_dir("latest")
    pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(latest))
    assert _rows(pg, pg.start_restored(latest)) == ["before-switch", "in-partial", "while-down", "at-stop"]
