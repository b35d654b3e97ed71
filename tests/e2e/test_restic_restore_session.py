"""Bringing Stash backups along: a PostgreSQL dump that restic backed up the way Stash's postgres addon does
(`pg_dump | restic backup --stdin --stdin-filename dumpfile.sql --host host-0`) is restored by a stashplan
RestoreSession naming that Stash Repository, into a new database, and compared."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from stashplan.transfer.run import TransferOptions, restore
from tests.fixtures.databases import PG_HOST, PgDatabase
from tests.fixtures.restic import Restic
from tests.fixtures.transfer import REPO_PASSWORD, StashWorld

QUERY = "SELECT count(*), md5(string_agg(name || ':' || qty, ',' ORDER BY id)) FROM items"


def stash_backup(r: Restic, db: PgDatabase) -> str:
    """What Stash's postgres-backup Function runs: the dump piped into restic, failures not hidden."""
    pipeline = (
        f"pg_dump -h {PG_HOST} -U postgres --dbname={db.name} | "
        f"{r.binary} -r {r.repo} backup --stdin --stdin-filename dumpfile.sql --host host-0 --json"
    )
    env = {**os.environ, "RESTIC_PASSWORD": r.password, "RESTIC_CACHE_DIR": str(r.cache)}
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", pipeline], capture_output=True, env=env, check=True
    )
    assert b'"message_type":"summary"' in done.stdout
    return str(r.snapshots()[-1]["short_id"])


def test_restore_session_restores_a_stash_restic_backup_into_a_new_database(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase], tmp_path: Path
) -> None:
    w = stash_world
    src, first_dst, latest_dst = pg_database(), pg_database(), pg_database()
    src.sql(
        "CREATE TABLE items(id serial primary key, name text, qty int); "
        "INSERT INTO items(name, qty) SELECT md5(g::text), g % 97 FROM generate_series(1, 20000) g"
    )
    first_expected = src.sql(QUERY)
    stash_repo = w.root / "stash-repo"  # where Stash's Repository keeps its restic repository
    r = Restic(Path("/usr/bin/restic"), stash_repo, tmp_path / "restic-cache", password=REPO_PASSWORD)
    r("init")
    first = stash_backup(r, src)
    src.sql("UPDATE items SET qty = qty + 1 WHERE id % 3 = 0; DELETE FROM items WHERE id > 19000")
    latest_expected = src.sql(QUERY)
    stash_backup(r, src)

    w.repository("stash-repo")  # local backend at w.root/stash-repo, Secret with RESTIC_PASSWORD
    w.appbinding("first-pg", first_dst.url, username="postgres")
    w.appbinding("latest-pg", latest_dst.url, username="postgres")
    # Stash names snapshots <repository>-<short id>; "latest" is the newest of the source host.
    w.restore_session("restore-first", "first-pg", repo="stash-repo", snapshots=[f"stash-repo-{first}"])
    w.restore_session("restore-latest", "latest-pg", repo="stash-repo")

    for name, dst, expected in (
        ("restore-first", first_dst, first_expected),
        ("restore-latest", latest_dst, latest_expected),
    ):
        result = restore(w.cluster, w.namespace, name, TransferOptions(database="postgres"))
        assert result.ok, result.host.error
        assert w.status("RestoreSession", name)["phase"] == "Succeeded"
        assert dst.sql(QUERY) == expected
    assert first_expected != latest_expected
    assert r("check", "--read-data").returncode == 0  # restic still finds its repository intact
