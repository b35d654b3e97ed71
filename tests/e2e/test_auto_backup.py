"""Auto-backup in local mode, as Stash's BackupBlueprint does it: an annotated AppBinding gets a generated
Repository and BackupConfiguration (variables substituted), they back up for real, and removing the annotation
plans the BackupConfiguration's removal while the Repository (its snapshots) stays until pruned."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from stashplan.api import builtin_addons, load_paths
from stashplan.cli import app
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def write_folder(folder: Path, root: Path, db: Path, *, annotated: bool) -> None:
    folder.mkdir(exist_ok=True)
    blueprint = {
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupBlueprint",
        "metadata": {"name": "sqlite-blueprint"},
        "spec": {
            "backend": {"local": {"mountPath": f"{root}/${{TARGET_NAMESPACE}}/${{TARGET_APP_RESOURCE}}/${{TARGET_NAME}}",
                                  "hostPath": {"path": str(root)}},
                        "storageSecretName": "repo-secret"},
            "task": {"name": "${TARGET_APP_RESOURCE}-backup-${TARGET_APP_VERSION}"},
            "schedule": "0 3 * * *",
            "retentionPolicy": {"name": "keep-last-2", "keepLast": 2, "prune": True},
        },
    }
    annotations = {"stash.appscode.com/backup-blueprint": "sqlite-blueprint",
                   "stash.appscode.com/schedule": "30 4 * * *",
                   "params.stash.appscode.com/waitTimeout": "60"} if annotated else {}
    appbinding = {
        "apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
        "metadata": {"name": "app-db", "namespace": "demo", "annotations": annotations},
        "spec": {"type": "stashplan.dev/sqlite", "version": "3", "clientConfig": {"url": f"sqlite:///{db}"}},
    }
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
              "stringData": {"RESTIC_PASSWORD": "auto-backup-test-password"}}
    (folder / "manifests.yaml").write_text(yaml.safe_dump_all([blueprint, appbinding, secret]))


def test_blueprint_generates_what_backs_up_and_unannotating_retires_the_configuration(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table t (x integer)")
        conn.executemany("insert into t values (?)", [(i,) for i in range(500)])
    folder, root, state = tmp_path / "manifests", tmp_path / "repos", tmp_path / "state.db"
    write_folder(folder, root, db, annotated=True)

    code, out = cli("plan", "-f", str(folder), "--state", str(state), "--detailed-exitcode")
    assert code == 2, out
    assert ("+ Repository/demo/app-app-db will be created  (auto-backup of AppBinding demo/app-db (BackupBlueprint "
            "sqlite-blueprint))") in out
    assert "+ CronJob/demo/stash-trigger-app-app-db will be created" in out
    assert cli("apply", "-f", str(folder), "--state", str(state), "--auto-approve")[0] == 0

    cluster = LocalCluster(state)
    try:
        repo = cluster.get("Repository", "demo", "app-app-db")
        assert repo["spec"]["backend"]["local"]["mountPath"] == f"{root}/demo/sqlite/app-db"
        config = cluster.get("BackupConfiguration", "demo", "app-app-db")
        assert config["spec"]["schedule"] == "30 4 * * *"  # the annotation wins over the blueprint
        assert config["spec"]["task"] == {"name": "sqlite-backup-3", "params": [{"name": "waitTimeout",
                                                                                 "value": "60"}]}
        assert config["spec"]["repository"] == {"name": "app-app-db"}

        # It backs up for real: trigger, then the loop with the local controllers runs the Job.
        assert cli("trigger", "app-app-db", "-n", "demo", "--state", str(state))[0] == 0
        manifests = load_paths([folder])
        controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
        end = time.monotonic() + 60
        while True:
            run_once(cluster, manifests=manifests, addons=builtin_addons(), controllers=controllers)
            phases = [(s.get("status") or {}).get("phase") for s in cluster.list("BackupSession", "demo")]
            if phases and phases[0] in ("Succeeded", "Failed"):
                break
            assert time.monotonic() < end, phases
            controllers.jobs.wait_all(0.5)
        assert phases == ["Succeeded"]
        assert cluster.get("Repository", "demo", "app-app-db")["status"]["snapshotCount"] == 1
        assert any((root / "demo" / "sqlite" / "app-db").iterdir())

        write_folder(folder, root, db, annotated=False)
        code, out = cli("plan", "-f", str(folder), "--state", str(state), "--detailed-exitcode")
        assert code == 2, out
        assert "- BackupConfiguration/demo/app-app-db will be destroyed  (auto-backup: no AppBinding names" in out
        assert "? Repository/demo/app-app-db  (no longer in the manifests)" in out
        assert cli("apply", "-f", str(folder), "--state", str(state), "--auto-approve")[0] == 0
        assert cluster.list("BackupConfiguration", "demo") == []
        assert cluster.list("CronJob", "demo") == []
        assert cluster.get("Repository", "demo", "app-app-db")  # kept for restores, as Stash keeps it
        code, out = cli("plan", "-f", str(folder), "--state", str(state), "--prune")
        assert "- Repository/demo/app-app-db will be destroyed" in out
    finally:
        cluster.close()


def test_an_annotation_naming_a_missing_blueprint_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write_folder(folder, tmp_path / "repos", tmp_path / "app.db", annotated=True)
    docs = list(yaml.safe_load_all((folder / "manifests.yaml").read_text()))
    (folder / "manifests.yaml").write_text(yaml.safe_dump_all(docs[1:]))
    code, out = cli("plan", "-f", str(folder), "--state", str(tmp_path / "s.db"))
    assert code == 1
    assert ("error: AppBinding demo/app-db: metadata.annotations[stash.appscode.com/backup-blueprint]: "
            "BackupBlueprint 'sqlite-blueprint' does not exist; no auto-backup is planned") in out
