"""A point-in-time RestoreSession on a real control plane (make kube-e2e), planned by the operator's own identity:
the restore Job the API server accepts mounts the PersistentVolumeClaim named by Task param claimName and runs
`stashplan transfer pitr-restore --pgdata <mount>/<pgdata>`; a session naming a claim of another namespace or
none, or asking the Job to recover (the image has no PostgreSQL server), is Invalid with one line and gets no Job. The
restore itself in a pod is not run here (the local-mode tests run the recovery)."""

from __future__ import annotations

import pytest

from stashplan.api import builtin_addons
from stashplan.cluster.kube import KubeCluster
from stashplan.desired.world import Settings
from stashplan.operator.iteration import run_once
from tests.e2e.test_real_kube import APPBINDING, installed, operator_kubeconfig  # noqa: F401 (fixtures)
from tests.fixtures.kube_real import RealKube

pytestmark = pytest.mark.real_kube

NS = "pitr-claim"


def _session(name: str, params: list[dict]) -> dict:
    return {"kind": "RestoreSession", "metadata": {"name": name, "namespace": NS},
            "spec": {"repository": {"name": "repo"},
                     "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "db"}},
                     "task": {"name": "postgres-pitr-restore-16", "params": params},
                     "pitr": {"targetTime": "2026-12-06T10:15:00Z"}}}  # fmt: skip


def test_the_restore_job_mounts_the_claim_and_a_session_without_one_gets_no_job(
    real_kube: RealKube, operator_kubeconfig: str  # noqa: F811
) -> None:
    real_kube.reset((NS,))
    admin, operator = KubeCluster(real_kube.kubeconfig), KubeCluster(operator_kubeconfig)
    try:
        real_kube.rest.post(f"/api/v1/namespaces/{NS}/persistentvolumeclaims", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pg-restored"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})  # fmt: skip
        admin.create({"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": NS},
                      "stringData": {"RESTIC_PASSWORD": "pw"}})  # fmt: skip
        admin.create({"kind": "Repository", "metadata": {"name": "repo", "namespace": NS},
                      "spec": {"backend": {"local": {"mountPath": "/tmp/pitr-claim-repo"},
                                           "storageSecretName": "repo-secret"}}})  # fmt: skip
        admin.create({"kind": "AppBinding", "metadata": {"name": "db", "namespace": NS},
                      "spec": {"type": "kubedb.com/postgres", "version": "16",
                               "clientConfig": {"url": "postgresql://127.0.0.1:5432"}}})  # fmt: skip
        admin.create(_session("into-claim", [{"name": "claimName", "value": "pg-restored"},
                                             {"name": "pgdata", "value": "data"},
                                             {"name": "recover", "value": "false"}]))
        admin.create(_session("recovering", [{"name": "claimName", "value": "pg-restored"}]))  # recover: default
        admin.create(_session("elsewhere", [{"name": "claimName", "value": "other/pg-restored"},
                                            {"name": "recover", "value": "false"}]))
        admin.create(_session("no-claim", [{"name": "pgdata", "value": "/srv/pg"},
                                           {"name": "recover", "value": "false"}]))
        done = run_once(operator, addons=builtin_addons(), namespace=NS, settings=Settings(cluster=True))  # kube mode's
        refused, no_claim, no_server = sorted(done.plan.refusals)
        assert no_claim.startswith("RestoreSession pitr-claim/no-claim: spec.task.params: Task param claimName must "
                                   "name the PersistentVolumeClaim to restore into"), no_claim
        assert admin.get("RestoreSession", NS, "no-claim")["status"]["phase"] == "Invalid"
        assert refused.startswith("RestoreSession pitr-claim/elsewhere: spec.task.params: Task param claimName "
                                  "'other/pg-restored' names a claim in another namespace"), refused
        assert no_server.startswith("RestoreSession pitr-claim/recovering: spec.task.params: Task param recover: a "
                                    "restore Job in a cluster cannot recover the directory"), no_server
        assert admin.get("RestoreSession", NS, "elsewhere")["status"]["phase"] == "Invalid"
        assert admin.get("RestoreSession", NS, "recovering")["status"]["phase"] == "Invalid"

        jobs = {j["metadata"]["name"]: j for j in admin.list("Job", NS)}
        assert "stash-restore-elsewhere" not in jobs and "stash-restore-recovering" not in jobs
        assert "stash-restore-no-claim" not in jobs
        pod = jobs["stash-restore-into-claim"]["spec"]["template"]["spec"]
        assert {"name": "stashplan-pitr-data", "persistentVolumeClaim": {"claimName": "pg-restored"}} in pod["volumes"]
        [container] = pod["containers"]
        assert {"name": "stashplan-pitr-data", "mountPath": "/stashplan-pitr-data"} in container["volumeMounts"]
        assert container["args"][:2] == ["transfer", "pitr-restore"]
        assert "--pgdata=/stashplan-pitr-data/data" in container["args"]
        assert "--pg-version=16" in container["args"]
    finally:
        admin.close()
        operator.close()
