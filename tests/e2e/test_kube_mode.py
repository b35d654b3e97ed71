"""Kube mode end to end: the loop (operator identity) against the API emulator, with the local CronJob
and Job controllers playing the cluster; a real PostgreSQL dump goes through `stashplan transfer backup`
(a child process whose KUBECONFIG points at the emulator) into the S3 API server, and back out on restore."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stashplan.api import builtin_addons
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.kube import KubeCluster
from stashplan.operator.iteration import LocalControllers, run_once
from tests.fixtures.databases import PgDatabase
from tests.fixtures.kube import KubeAPI
from tests.fixtures.s3 import S3Bucket

NS = "demo"
APPBINDING = "appcatalog.appscode.com/v1alpha1"


@pytest.fixture
def clusters(kube_api: KubeAPI) -> Iterator[tuple[KubeCluster, KubeCluster]]:
    """(admin, operator): the user's kubectl identity and the operator's ServiceAccount (the ClusterRole)."""
    admin, operator = KubeCluster(kube_api.kubeconfig), KubeCluster(kube_api.operator_kubeconfig)
    yield admin, operator
    admin.close()
    operator.close()


def stash_objects(db: PgDatabase, bucket: S3Bucket) -> list[dict]:
    def ref(kind: str, name: str) -> dict:
        return {"apiVersion": APPBINDING, "kind": kind, "name": name}

    def appbinding(name: str, url: str) -> dict:
        return {"kind": "AppBinding", "metadata": {"name": name, "namespace": NS},
                "spec": {"type": "kubedb.com/postgres", "version": "15", "clientConfig": {"url": url},
                         "secret": {"name": "pg-auth"}}}  # fmt: skip

    restore_url = db.url.replace(f"/{db.name}?", f"/{db.name}_restored?")
    return [
        {"kind": "Secret", "metadata": {"name": "pg-auth", "namespace": NS},
         "stringData": {"username": "postgres", "password": ""}},
        appbinding("app-pg", db.url),
        appbinding("restored-pg", restore_url),
        {"kind": "Secret", "metadata": {"name": "s3-repo-secret", "namespace": NS},
         "stringData": {"RESTIC_PASSWORD": "kube-e2e-password", **bucket.endpoint.env()}},
        {"kind": "Repository", "metadata": {"name": "s3-repo", "namespace": NS},
         "spec": {"backend": {"s3": {"endpoint": bucket.endpoint.url, "bucket": bucket.name, "prefix": "pg"},
                              "storageSecretName": "s3-repo-secret"}}},
        {"kind": "BackupConfiguration", "metadata": {"name": "app-pg-backup", "namespace": NS},
         "spec": {"schedule": "* * * * *", "task": {"name": "postgres-backup-15", "params": [{"name": "backupCMD", "value": "pg_dump"}]},
                  "repository": {"name": "s3-repo"}, "target": {"ref": ref("AppBinding", "app-pg")},
                  "retentionPolicy": {"name": "keep-last-3", "keepLast": 3, "prune": True}, "timeOut": "5m"}},
    ]  # fmt: skip


def run_until(
    operator: KubeCluster,
    controllers: LocalControllers,
    now: datetime,
    done: Callable[[], bool],
    timeout: float = 60,
) -> None:
    addons = builtin_addons()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        run_once(operator, addons=addons, controllers=controllers, now=now)
        if done():
            return
        controllers.jobs.wait_all(0.5)
    logs = "\n".join(p.read_text()[-2000:] for p in sorted(controllers.jobs.log_dir.glob("*.log")))
    pytest.fail(f"not reached in {timeout}s; job logs:\n{logs}")


def phase(cluster: KubeCluster, kind: str, name: str) -> str:
    return str((cluster.get(kind, NS, name).get("status") or {}).get("phase", ""))


def test_cronjob_triggers_a_backup_session_whose_job_runs_the_transfer_against_the_api(
    kube_api: KubeAPI,
    clusters: tuple[KubeCluster, KubeCluster],
    pg_database: Callable[[], PgDatabase],
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    admin, operator = clusters
    db = pg_database()
    db.sql("CREATE TABLE items(id int primary key, name text); "
           "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g")  # fmt: skip
    expected = db.sql("SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items")
    for obj in stash_objects(db, bucket=s3_bucket):
        admin.create(obj)
    # Jobs run as child processes with the pods' identity: ClusterRole stashplan-job, as the planner binds it.
    env = cluster_settings("kube", tmp_path / "unused.db", kubeconfig=kube_api.job_kubeconfig).env()
    controllers = LocalControllers.create(admin, env, tmp_path / "logs")  # kubelet + CronJob controller
    try:
        run_once(operator, addons=builtin_addons(), controllers=controllers)
        assert [c["metadata"]["name"] for c in admin.list("CronJob", NS)] == ["stash-trigger-app-pg-backup"]
        binding = admin.get("RoleBinding", NS, "stashplan-job")  # the pods' identity, made by the operator
        assert binding["roleRef"]["name"] == "stashplan-job"
        assert admin.get("ServiceAccount", NS, "stashplan-job")

        later = datetime.now(UTC) + timedelta(minutes=2)  # the every-minute schedule is due
        run_until(operator, controllers, later, lambda: bool(admin.list("BackupSession", NS)))
        [session] = admin.list("BackupSession", NS)
        name = session["metadata"]["name"]
        assert name.startswith("app-pg-backup-")

        def finished() -> bool:
            job = admin.get("Job", NS, f"stash-backup-{name}")
            done = bool((job.get("status") or {}).get("succeeded") or (job.get("status") or {}).get("failed"))
            return done and phase(admin, "BackupSession", name) in ("Succeeded", "Failed")

        run_until(operator, controllers, later, finished)

        status = admin.get("BackupSession", NS, name)["status"]
        assert status["phase"] == "Succeeded", status
        host = status["targets"][0]["stats"][0]
        assert host["phase"] == "Succeeded" and host["snapshots"][0]["name"]
        job = admin.get("Job", NS, f"stash-backup-{name}")
        assert job["status"]["succeeded"] == 1
        repo = admin.get("Repository", NS, "s3-repo")["status"]
        assert repo["snapshotCount"] == 1 and repo["integrity"] is True
        keys = [
            o["Key"] for o in s3_bucket.endpoint.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]
        ]
        assert any(k.startswith("pg/") for k in keys)

        # and back: a RestoreSession into a fresh database, through the same loop and controllers
        db.sql(f"CREATE DATABASE {db.name}_restored")
        restored = PgDatabase(f"{db.name}_restored")
        admin.create({"kind": "RestoreSession", "metadata": {"name": "restore-1", "namespace": NS},
                      "spec": {"task": {"name": "postgres-restore-15"}, "repository": {"name": "s3-repo"},
                               "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding",
                                                  "name": "restored-pg"},
                                          "rules": [{"snapshots": ["latest"]}]}}})  # fmt: skip
        run_until(
            operator,
            controllers,
            later,
            lambda: phase(admin, "RestoreSession", "restore-1") in ("Succeeded", "Failed"),
        )
        assert phase(admin, "RestoreSession", "restore-1") == "Succeeded", (
            admin.get("RestoreSession", NS, "restore-1")["status"],
            [p.read_text()[-1500:] for p in sorted((tmp_path / "logs").glob("*restore*"))],
        )
        assert restored.sql("SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items") == expected
    finally:
        controllers.jobs.stop()
        db.sql(f"DROP DATABASE IF EXISTS {db.name}_restored WITH (FORCE)")
