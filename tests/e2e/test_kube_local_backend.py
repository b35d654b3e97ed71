"""Kube mode with a mounted `local` backend: the operator's backup and restore Jobs carry the Repository's
hostPath volume mounted at mountPath (the test kubelet runs the pod's command on this machine, where the
hostPath is the same directory), and the repository lands at <mountPath>/<subPath>."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stashplan.api import builtin_addons
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.kube import KubeCluster
from stashplan.operator.iteration import LocalControllers, run_once
from tests.fixtures.kube import KubeAPI

NS = "demo"
AB = "appcatalog.appscode.com/v1alpha1"


@pytest.fixture
def clusters(kube_api: KubeAPI) -> Iterator[tuple[KubeCluster, KubeCluster]]:
    admin, operator = KubeCluster(kube_api.kubeconfig), KubeCluster(kube_api.operator_kubeconfig)
    yield admin, operator
    admin.close()
    operator.close()


def _until(operator: KubeCluster, controllers: LocalControllers, done: Callable[[], bool]) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        run_once(operator, addons=builtin_addons(), controllers=controllers)
        if done():
            return
        controllers.jobs.wait_all(0.5)
    logs = "\n".join(p.read_text()[-1500:] for p in sorted(controllers.jobs.log_dir.glob("*.log")))
    pytest.fail(f"not reached in 60s; job logs:\n{logs}")


def _phase(cluster: KubeCluster, kind: str, name: str) -> str:
    return str((cluster.get(kind, NS, name).get("status") or {}).get("phase", ""))


def test_backup_and_restore_jobs_mount_the_local_backend_and_the_repository_lands_there(
    kube_api: KubeAPI, clusters: tuple[KubeCluster, KubeCluster], sqlite_file: Path, tmp_path: Path
) -> None:
    admin, operator = clusters
    host = tmp_path / "backups"
    host.mkdir()
    local = {"mountPath": str(host), "subPath": "team/app", "hostPath": {"path": str(host)}}
    objects = [
        {"kind": "AppBinding", "metadata": {"name": "app-db", "namespace": NS},
         "spec": {"type": "stashplan.dev/sqlite", "version": "3", "clientConfig": {"url": f"sqlite://{sqlite_file}"}}},
        {"kind": "AppBinding", "metadata": {"name": "new-db", "namespace": NS},
         "spec": {"type": "stashplan.dev/sqlite", "version": "3",
                  "clientConfig": {"url": f"sqlite://{tmp_path}/restored.db"}}},
        {"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": NS},
         "stringData": {"RESTIC_PASSWORD": "kube-local-password"}},
        {"kind": "Repository", "metadata": {"name": "local-repo", "namespace": NS},
         "spec": {"backend": {"local": local, "storageSecretName": "repo-secret"}}},
        {"kind": "BackupConfiguration", "metadata": {"name": "db-backup", "namespace": NS},
         "spec": {"schedule": "0 3 * * *", "repository": {"name": "local-repo"},
                  "target": {"ref": {"apiVersion": AB, "kind": "AppBinding", "name": "app-db"}},
                  "retentionPolicy": {"name": "keep", "keepLast": 3, "prune": True}}},
    ]  # fmt: skip
    for obj in objects:
        admin.create(obj)
    env = cluster_settings("kube", tmp_path / "unused.db", kubeconfig=kube_api.job_kubeconfig).env()
    controllers = LocalControllers.create(admin, env, tmp_path / "logs")
    try:
        run_once(operator, addons=builtin_addons(), controllers=controllers)
        admin.create({"kind": "BackupSession", "metadata": {"name": "now", "namespace": NS},
                      "spec": {"invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration",
                                           "name": "db-backup"}}})  # fmt: skip
        _until(operator, controllers, lambda: _phase(admin, "BackupSession", "now") in ("Succeeded", "Failed"))
        assert _phase(admin, "BackupSession", "now") == "Succeeded"
        pod = admin.get("Job", NS, "stash-backup-now")["spec"]["template"]["spec"]
        assert {"name": "stash-local-backend", "hostPath": {"path": str(host)}} in pod["volumes"]
        assert {"name": "stash-local-backend", "mountPath": str(host)} in pod["containers"][-1]["volumeMounts"]
        assert (host / "team" / "app" / "config").is_file()

        admin.create({"kind": "RestoreSession", "metadata": {"name": "back", "namespace": NS},
                      "spec": {"repository": {"name": "local-repo"},
                               "target": {"ref": {"apiVersion": AB, "kind": "AppBinding", "name": "new-db"},
                                          "rules": [{"snapshots": ["latest"]}]}}})  # fmt: skip
        _until(operator, controllers, lambda: _phase(admin, "RestoreSession", "back") in ("Succeeded", "Failed"))
        assert _phase(admin, "RestoreSession", "back") == "Succeeded"
        restore_pod = admin.get("Job", NS, "stash-restore-back")["spec"]["template"]["spec"]
        assert {"name": "stash-local-backend", "hostPath": {"path": str(host)}} in restore_pod["volumes"]
        rows = subprocess.run(["sqlite3", str(tmp_path / "restored.db"), "SELECT group_concat(name) FROM items"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert rows == "alpha,beta,gamma"
    finally:
        controllers.jobs.stop()
