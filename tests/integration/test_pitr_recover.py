"""The recovery a restore Job runs before it reports Succeeded, on a real PostgreSQL 15: a restored directory is
recovered to the target, promoted and stopped, and then starts with no restore_command at all holding exactly
the rows committed by the target; a segment that goes missing after the directory was written fails the
recovery with a message naming the segment and the window."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from providers.storage import open_storage
from stashplan.pitr import walstore
from stashplan.pitr.recover import RecoveryFailed, recover, server_bin
from stashplan.pitr.recovery_conf import AUTO_CONF, restore_command
from stashplan.pitr.restore import Restored, restore
from stashplan.pitr.spool_names import SPOOL_DIR
from stashplan.pitr.window import Target, TargetKind, describe
from stashplan.repository import Repository
from tests.fixtures.pitr import ArchivingPostgres

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
BASEBACKUP = "/usr/lib/postgresql/15/bin/pg_basebackup"


def _owner() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    account = pwd.getpwnam("postgres")
    return account.pw_uid, account.pw_gid


def _written(pg: ArchivingPostgres, target: Target, name: str) -> tuple[Path, Restored]:
    """A data directory restored for `target` (no prefetch: every segment comes from the repository when the
    server asks), owned by the server's OS user."""
    pgdata = pg.new_dir(name)
    command = restore_command(["env", f"PYTHONPATH={pg.pythonpath}", *pg.stashplan], pg.repo, None)
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        done = restore(repo, target, pgdata, command)
    if (owner := _owner()) is not None:
        subprocess.run(["chown", "-R", f"{owner[0]}:{owner[1]}", str(pgdata), str(pg.root / "repo")], check=True)
    return pgdata, done


def _recover(pg: ArchivingPostgres, pgdata: Path, target: Target, done: Restored) -> str:
    return recover(pgdata, target, describe(done.window), bin_dir=server_bin("15"), env=pg.env(),
                   owner=_owner(), settings=done.settings).stop


def _now(pg: ArchivingPostgres) -> datetime:
    stamp = pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.USZ')")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_recovered_directory_starts_without_the_repository_and_a_missing_segment_fails_naming_it(
    archiving_postgres: ArchivingPostgres,
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    pg.sql("INSERT INTO items(name) VALUES ('base')")
    pg.run("pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
           "--pg-basebackup", BASEBACKUP)  # fmt: skip
    segments = []
    for n in range(2):
        pg.sql(f"INSERT INTO items(name) VALUES ('row-{n}')")
        segments.append(pg.switch_wal())
    time.sleep(0.05)
    target = Target(TargetKind.TIME, time=_now(pg))
    time.sleep(0.05)
    pg.sql("INSERT INTO items(name) VALUES ('late')")
    pg.switch_wal()

    pgdata, done = _written(pg, target, "recovered")
    stop = _recover(pg, pgdata, target, done)
    assert stop.startswith("LOG:  recovery stopping before commit"), stop
    assert not (pgdata / "recovery.signal").exists()
    assert "stashplan" not in (pgdata / AUTO_CONF).read_text()
    assert not (pgdata / SPOOL_DIR).exists()
    port = pg.start_restored(pgdata)  # a plain start: nothing to recover, no restore_command
    assert pg.sql("SHOW restore_command", port=port) == ""
    assert pg.sql("SELECT pg_is_in_recovery()", port=port) == "f"
    assert pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=port) == "base,row-0,row-1"

    broken, written = _written(pg, target, "segment-lost")
    lost = segments[1]
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        walstore.delete(repo, lost)
    with pytest.raises(RecoveryFailed) as failed:
        _recover(pg, broken, target, written)
    message = str(failed.value)
    assert "recovery ended before configured recovery target was reached" in message, message
    assert f"WAL segment {lost} is not in the archive" in message
    assert f"recoverable window {describe(written.window)}" in message
    assert len(message.splitlines()) == 1
    assert not list(pg.root.glob("segment-lost/postmaster.pid"))  # the server is not left running
