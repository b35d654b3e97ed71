"""PostgreSQL point-in-time recovery through Stash's kinds in local mode, on a real PostgreSQL 15 archiving its WAL
into the Repository: a BackupConfiguration with Task postgres-basebackup-15 makes a Succeeded BackupSession whose
snapshot is a base backup; a RestoreSession with spec.pitr.targetTime (Task postgres-pitr-restore-15) writes a
data directory and recovers it (PostgreSQL started by the Job) to exactly the rows committed by then, before it
Succeeds; with recover "false" it only writes the directory; a missing segment Fails it naming the window."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.api import builtin_addons, load_paths
from stashplan.cli import app
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once
from stashplan.pitr import walstore
from stashplan.pitr.labels import BASEBACKUP_TAG
from stashplan.pitr.walnames import parse_lsn, segment_number, segment_of
from stashplan.repository import Repository
from tests.fixtures.pitr import ArchivingPostgres, basebackup_objects

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
runner = CliRunner()
NS = "demo"


def _objects(pg: ArchivingPostgres) -> list[dict]:
    return basebackup_objects(pg, NS, prune=True)


def _restore_session(
    pg: ArchivingPostgres, pgdata: Path, target_time: str, name: str = "to-time", recover: str = ""
) -> dict:
    # The server the Job starts runs restore_command as its OS user, with the Job's environment.
    command = shlex.join(["env", f"PYTHONPATH={pg.pythonpath}", *pg.stashplan])
    extra = [{"name": "recover", "value": recover}] if recover else []
    return {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "RestoreSession",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "repository": {"name": "repo"},
            "target": {
                "ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding", "name": "pg"}
            },
            "task": {
                "name": "postgres-pitr-restore-15",
                "params": [
                    {"name": "pgdata", "value": str(pgdata)},
                    {"name": "stashplanCommand", "value": command},
                    *extra,
                ],
            },
            "pitr": {"targetTime": target_time},
        },
    }


def _load(folder: Path, docs: list[dict]) -> list[dict]:
    folder.mkdir(exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return load_paths([folder])


def _until_final(
    cluster: LocalCluster, controllers: LocalControllers, objs: list[dict], kind: str, name: str = ""
) -> dict:
    end = time.monotonic() + 120
    while time.monotonic() < end:
        run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
        found = [o for o in cluster.list(kind, NS) if o["metadata"]["name"] == name or not name]
        if found and (found[0].get("status") or {}).get("phase") in ("Succeeded", "Failed", "Invalid"):
            return found[0]
        controllers.jobs.wait_all(0.3)
    raise AssertionError(f"the {kind} did not finish")


def _commit(pg: ArchivingPostgres, name: str) -> None:
    pg.sql(f"INSERT INTO items(name) VALUES ('{name}')")


def test_basebackup_task_and_pitr_restore_session_recover_to_the_target_time(
    archiving_postgres: ArchivingPostgres, tmp_path: Path
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    _commit(pg, "base")
    state = tmp_path / "state.db"
    cluster = LocalCluster(state)
    controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
    objs = _load(tmp_path / "manifests", _objects(pg))
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
    triggered = runner.invoke(app, ["trigger", "pg-base", "-n", NS, "--state", str(state)])
    assert triggered.exit_code == 0, triggered.output
    session = _until_final(cluster, controllers, objs, "BackupSession")
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert session["status"]["phase"] == "Succeeded", logs[-3000:]
    [stats] = session["status"]["targets"][0]["stats"]
    [snapshot] = stats["snapshots"]
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        [snap] = repo.snapshots()
    assert (snapshot["name"], snapshot["path"]) == (snap.short_id, "/base.tar")
    conditions = {c["type"]: c["status"] for c in session["status"]["conditions"]}
    assert conditions.get("RetentionPolicyApplied") == "True", session["status"]["conditions"]
    assert cluster.get("Repository", NS, "repo")["status"]["snapshotCount"] == 1
    assert BASEBACKUP_TAG in snap.tags and any(t.startswith("pg-stop-lsn=") for t in snap.tags)
    assert f"session={session['metadata']['name']}" in snap.tags

    _commit(pg, "before-1")
    time.sleep(0.05)  # keep the target strictly between two commit timestamps
    target = pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.USZ')")
    time.sleep(0.05)
    _commit(pg, "after-1")
    pg.switch_wal()

    pgdata, early, later = pg.new_dir("restored"), pg.new_dir("early"), pg.new_dir("later")
    before_backup = pg.sql(
        "SELECT to_char(now() AT TIME ZONE 'UTC' - interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SSZ')"
    )
    objs = _load(
        tmp_path / "manifests",
        [
            *_objects(pg),
            _restore_session(pg, pgdata, target),
            _restore_session(pg, early, before_backup, "too-early"),
            _restore_session(pg, later, target, "directory-only", recover="false"),
        ],
    )
    refused = _until_final(cluster, controllers, objs, "RestoreSession", "too-early")
    assert refused["status"]["phase"] == "Failed"
    assert "outside the recoverable window: timeline 1: " in refused["status"]["stats"][0]["error"]
    assert not early.exists()  # nothing written
    restored = _until_final(cluster, controllers, objs, "RestoreSession", "to-time")
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert restored["status"]["phase"] == "Succeeded", logs[-3000:]
    assert "recovery: LOG:  recovery stopping before commit" in logs  # the phases are in the Job's log
    # Succeeded: recovered and promoted already; the directory needs neither recovery.signal nor the repository.
    assert not (pgdata / "recovery.signal").exists()
    assert "stashplan" not in (pgdata / "postgresql.auto.conf").read_text()
    port = pg.start_restored(pgdata)
    assert pg.sql("SHOW restore_command", port=port) == ""
    rows = pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=port).split(",")
    assert rows == ["base", "before-1"]

    # recover "false": the directory only, set up to recover when a server starts on it (as before)
    directory_only = _until_final(cluster, controllers, objs, "RestoreSession", "directory-only")
    assert directory_only["status"]["phase"] == "Succeeded", directory_only["status"]
    assert (later / "recovery.signal").exists()
    assert "restore_command" in (later / "postgresql.auto.conf").read_text()
    rows = pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=pg.start_restored(later)).split(",")
    assert rows == ["base", "before-1"]

    # A segment the target needs goes missing from the repository: the Session Fails, naming the window.
    _commit(pg, "after-2")
    lost = pg.switch_wal()
    _commit(pg, "after-3")
    time.sleep(0.05)
    late_target = pg.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.USZ')")
    time.sleep(0.05)
    _commit(pg, "after-4")
    pg.switch_wal()
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        walstore.delete(repo, lost)
    gap = pg.new_dir("gap")
    objs = _load(tmp_path / "manifests", [*_objects(pg), _restore_session(pg, gap, late_target, "past-a-gap")])
    failed = _until_final(cluster, controllers, objs, "RestoreSession", "past-a-gap")
    assert failed["status"]["phase"] == "Failed"
    error = failed["status"]["stats"][0]["error"]
    assert "outside the recoverable window: timeline 1: " in error and len(error.splitlines()) == 1, error
    assert f"0/{(int(lost[16:], 16) << 24):X}" in error  # the window ends where the missing segment begins


def _backed_up(cluster: LocalCluster, controllers: LocalControllers, objs: list[dict], state: Path) -> dict:
    before = {o["metadata"]["name"] for o in cluster.list("BackupSession", NS)}
    triggered = runner.invoke(app, ["trigger", "pg-base", "-n", NS, "--state", str(state)])
    assert triggered.exit_code == 0, triggered.output
    [name] = {o["metadata"]["name"] for o in cluster.list("BackupSession", NS)} - before
    session = _until_final(cluster, controllers, objs, "BackupSession", name)
    assert session["status"]["phase"] == "Succeeded", session["status"]
    return session


def test_retention_forgets_base_backups_and_the_wal_only_they_needed_and_the_kept_one_restores(
    archiving_postgres: ArchivingPostgres, tmp_path: Path
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    _commit(pg, "base")
    pg.switch_wal()
    state = tmp_path / "state.db"
    cluster = LocalCluster(state)
    controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
    objs = _load(tmp_path / "manifests", basebackup_objects(pg, NS, prune=True, keep_last=1))
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
    _backed_up(cluster, controllers, objs, state)
    for i in range(3):  # WAL only the first base backup needs
        _commit(pg, f"between-{i}")
        pg.switch_wal()
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        before = sorted(n for n in walstore.listed(repo) if len(n) == 24)
    second = _backed_up(cluster, controllers, objs, state)
    _commit(pg, "after")
    pg.switch_wal()

    applied = next(c for c in second["status"]["conditions"] if c["type"] == "RetentionPolicyApplied")
    assert applied["status"] == "True" and "removed 1 snapshot(s)" in applied["message"], applied
    assert "archived WAL file(s) no kept base backup needs" in applied["message"], applied
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        [kept] = repo.snapshots(tags=[BASEBACKUP_TAG])
        start = next(t.split("=", 1)[1] for t in kept.tags if t.startswith("pg-start-lsn="))
        after = sorted(n for n in walstore.listed(repo) if len(n) == 24)
    first_needed = segment_of(parse_lsn(start))
    gone = set(before) - set(after)
    assert gone and all(
        segment_number(n) < first_needed for n in gone
    )  # only what the kept one does not need
    assert all(segment_number(n) >= first_needed for n in after)
    if os.geteuid() == 0:  # the local loop's Jobs ran as root; the restore runs as the server's OS user
        subprocess.run(["chown", "-R", "postgres", str(pg.root / "repo")], check=True)
    latest = pg.new_dir("kept-latest")
    pg.run("pg", "restore", "-r", pg.repo, "--latest", "--pgdata", str(latest))
    rows = pg.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items", port=pg.start_restored(latest))
    assert rows.split(",") == ["base", "between-0", "between-1", "between-2", "after"]
