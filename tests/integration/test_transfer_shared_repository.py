"""Two BackupConfigurations sharing one Repository through `stashplan transfer backup|restore`: each one's
retention forgets only its own snapshots, and each restores its own data."""

from __future__ import annotations

import subprocess
from pathlib import Path

from typer.testing import CliRunner

from providers.storage import storage_from_repository
from stashplan.repository import InvokerRef, Repository, TargetRef
from stashplan.transfer.cli import app
from tests.fixtures.transfer import REPO_PASSWORD, StashWorld

runner = CliRunner()


def sql(path: Path, statement: str) -> str:
    return subprocess.run(["sqlite3", str(path), statement], capture_output=True, text=True, check=True).stdout


def env_for(w: StashWorld) -> dict[str, str]:
    return {"STASHPLAN_CLUSTER": "local", "STASHPLAN_STATE": str(w.state)}


def transfer_backup(w: StashWorld, config: str, session: str) -> None:
    w.backup_session(config, session)
    result = runner.invoke(
        app,
        ["backup", "--namespace=demo", f"--backupsession={session}", "--database=sqlite", "--pushgateway-url="],
        env=env_for(w),
    )
    assert result.exit_code == 0, result.output


def transfer_restore(w: StashWorld, name: str, target: str) -> tuple[int, str]:
    w.restore_session(name, target)
    result = runner.invoke(
        app,
        ["restore", "--namespace=demo", f"--restoresession={name}", "--database=sqlite", "--snapshot=latest"],
        env=env_for(w),
    )
    return result.exit_code, result.output


def test_two_configs_sharing_a_repository_keep_their_own_last_snapshot_and_restore_it(
    stash_world: StashWorld, tmp_path: Path
) -> None:
    w = stash_world
    db = {name: tmp_path / f"{name}.db" for name in ("a", "b")}
    for name, path in db.items():
        sql(path, f"CREATE TABLE items(name TEXT); INSERT INTO items VALUES ('{name}-first');")
        w.appbinding(f"app-{name}", f"sqlite://{path}")
        w.backup_config(f"cfg-{name}", f"app-{name}", keep_last=1, prune=True)
    w.appbinding("fresh", f"sqlite://{tmp_path}/fresh.db")
    repo_obj = w.repository()

    transfer_backup(w, "cfg-a", "a1")
    transfer_backup(w, "cfg-b", "b1")
    sql(db["a"], "INSERT INTO items VALUES ('a-second')")
    transfer_backup(w, "cfg-a", "a2")
    sql(db["b"], "INSERT INTO items VALUES ('b-second')")
    transfer_backup(w, "cfg-b", "b2")  # before: keep-last 1 over host-0/dumpfile.sql forgot a2's snapshot

    for session in ("a1", "b1", "a2", "b2"):
        assert w.status("BackupSession", session)["phase"] == "Succeeded"
    storage = storage_from_repository(repo_obj, {"RESTIC_PASSWORD": REPO_PASSWORD})
    snaps = Repository.open(storage, REPO_PASSWORD).snapshots()
    assert sorted((s.tags, s.invoker, s.target) for s in snaps) == [
        (("session=a2",), InvokerRef("BackupConfiguration", "demo", "cfg-a"), TargetRef("demo", "app-a")),
        (("session=b2",), InvokerRef("BackupConfiguration", "demo", "cfg-b"), TargetRef("demo", "app-b")),
    ]

    for name, path in db.items():
        path.unlink()
        code, out = transfer_restore(w, f"restore-{name}", f"app-{name}")
        assert code == 0, out
        assert sql(path, "SELECT name FROM items ORDER BY rowid").split() == [f"{name}-first", f"{name}-second"]

    # "latest" into an AppBinding that has no snapshot of its own would pick one of two databases: refused.
    code, out = transfer_restore(w, "restore-fresh", "fresh")
    assert code == 1
    status = w.status("RestoreSession", "restore-fresh")
    assert status["phase"] == "Failed"
    assert "is ambiguous: none is of demo/fresh" in status["stats"][0]["error"]
