"""The transfer in kube mode: the same backup and restore through the Kubernetes API (emulator), with the
operator's RBAC from specs/deploy (no Secret permission: the Secrets come as the kubelet gives them from the pod
spec) — statuses, Repository status and Events land as in local mode."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stashplan.cluster.kube import KubeCluster
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.kube import KubeAPI
from tests.fixtures.transfer import StashWorld, kubelet_gives


def test_backup_and_restore_through_the_kubernetes_api(
    kube_api: KubeAPI, sqlite_file: Path, tmp_path: Path
) -> None:
    admin = KubeCluster(kubeconfig=str(kube_api.kubeconfig))
    operator = KubeCluster(kubeconfig=str(kube_api.operator_kubeconfig))
    root = tmp_path / "repos"
    root.mkdir()
    try:
        setup = StashWorld(admin, tmp_path / "unused", root, namespace="kube-demo")
        setup.appbinding("app-db", f"sqlite://{sqlite_file}", username="app", password="app-secret")
        setup.appbinding("new-db", f"sqlite://{tmp_path}/new.db")
        setup.repository()
        setup.backup_config("cfg", "app-db")
        setup.backup_session("cfg", "s1")
        given = kubelet_gives(admin, "kube-demo", "app-db")
        result = backup(operator, "kube-demo", "s1", TransferOptions(database="sqlite", given=given))
        assert result.ok, result.error
        assert setup.status("BackupSession", "s1")["phase"] == "Succeeded"
        assert setup.status("Repository", "repo")["snapshotCount"] == 1
        assert {e["reason"] for e in setup.events("s1")} == {
            "Host Backup Succeeded",
            "BackupSession Succeeded",
        }
        setup.restore_session("r1", "new-db")
        given = kubelet_gives(admin, "kube-demo", "new-db")
        assert restore(operator, "kube-demo", "r1", TransferOptions(database="sqlite", given=given)).ok
        rows = subprocess.run(
            ["sqlite3", f"{tmp_path}/new.db", "SELECT count(*) FROM items"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert rows == "3"
    finally:
        admin.close()
        operator.close()


def test_hooks_run_in_the_job_and_their_conditions_land_through_the_kubernetes_api(
    kube_api: KubeAPI, sqlite_file: Path, tmp_path: Path
) -> None:
    admin = KubeCluster(kubeconfig=str(kube_api.kubeconfig))
    operator = KubeCluster(kubeconfig=str(kube_api.operator_kubeconfig))
    root = tmp_path / "repos"
    root.mkdir()
    marker = tmp_path / "pre-backup-ran"
    try:
        setup = StashWorld(admin, tmp_path / "unused", root, namespace="kube-hooks")
        setup.appbinding("app-db", f"sqlite://{sqlite_file}")
        setup.repository()
        config = setup.backup_config("cfg", "app-db")
        config["spec"]["hooks"] = {
            "preBackup": {"exec": {"command": ["sh", "-c", f"echo '{{{{ .Namespace }}}}' > {marker}"]}},
            "postBackup": {"exec": {"command": ["sh", "-c", "echo 'notify failed' >&2; exit 2"]}},
        }
        admin.replace(config)
        setup.backup_session("cfg", "s1")
        given = kubelet_gives(admin, "kube-hooks", "app-db")
        result = backup(operator, "kube-hooks", "s1", TransferOptions(database="sqlite", given=given))
        assert not result.ok and "postBackup hook failed: exec sh exited with code 2: notify failed" in result.error
        assert marker.read_text().strip() == "kube-hooks"
        status = setup.status("BackupSession", "s1")
        assert status["phase"] == "Failed"
        conditions = {c["type"]: c["status"] for c in status["targets"][0]["conditions"]}
        assert conditions == {"PreBackupHookExecutionSucceeded": "True", "PostBackupHookExecutionSucceeded": "False"}
        assert setup.status("Repository", "repo")["snapshotCount"] == 1  # the snapshot before the hook stays
    finally:
        admin.close()
        operator.close()
