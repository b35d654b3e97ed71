"""Against a real control plane (make kube-e2e), as the operator's own ServiceAccount: a base-backup
BackupConfiguration with Task param walArchive=receive gets its WAL receiver Deployment, which the API server
accepts and defaults without the next plan changing it; pausing scales it to 0; dropping the param or the
configuration removes it; what its receiver reads at its stop to decide whether its slot is retired (the
Deployment there, on another slot, being deleted, gone). (Its pod is not run here: the receiver's streaming and
its slot's drop are tested in local mode.)"""

from __future__ import annotations

import pytest

from stashplan.api import builtin_addons
from stashplan.cluster.kube import KubeCluster
from stashplan.operator.iteration import run_once
from stashplan.transfer.wal_receive import retired
from tests.e2e.test_real_kube import APPBINDING, installed, operator_kubeconfig  # noqa: F401 - fixtures
from tests.fixtures.kube_real import RealKube

pytestmark = pytest.mark.real_kube
NS = "e2e-wal-receive"
PARAMS = [{"name": "walArchive", "value": "receive"}, {"name": "walPartialInterval", "value": "2"}]


def _config(params: list[dict], paused: bool = False) -> dict:
    return {"kind": "BackupConfiguration", "metadata": {"name": "db", "namespace": NS},
            "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"}, "paused": paused,
                     "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "pg"}},
                     "task": {"name": "postgres-basebackup-15", "params": params},
                     "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": False}}}  # fmt: skip


def test_the_receiver_deployment_is_applied_settles_scales_with_pause_and_goes_with_its_configuration(
    real_kube: RealKube, operator_kubeconfig: str  # noqa: F811 - the fixture imported above
) -> None:
    real_kube.reset((NS,))
    admin, operator = KubeCluster(real_kube.kubeconfig), KubeCluster(operator_kubeconfig)
    try:
        admin.create({"kind": "Repository", "metadata": {"name": "repo", "namespace": NS},
                      "spec": {"backend": {"local": {"mountPath": "/tmp/r"}, "storageSecretName": "s"}}})  # fmt: skip
        admin.create({"kind": "AppBinding", "metadata": {"name": "pg", "namespace": NS},
                      "spec": {"type": "kubedb.com/postgres", "secret": {"name": "pg-auth"},
                               "clientConfig": {"url": "postgresql://pg.e2e-wal-receive.svc:5432/"}}})  # fmt: skip
        admin.create(_config(PARAMS))
        first = run_once(operator, addons=builtin_addons())
        assert first.plan.refusals == ()
        [deploy] = admin.list("Deployment", NS)
        assert deploy["metadata"]["name"] == "db-wal-receive"
        assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"]["type"] == "Recreate"
        assert deploy["metadata"]["ownerReferences"][0]["kind"] == "BackupConfiguration"
        pod = deploy["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "stashplan-job"
        assert pod["containers"][0]["args"][:2] == ["transfer", "wal-receive"]
        again = run_once(operator, addons=builtin_addons())  # the server's defaults are not a change
        assert not [c for c in again.result.applied if c.kind == "Deployment"], again.plan.changes
        assert retired(admin, NS, "db-wal-receive", "stashplan_db") is None  # still its slot: kept
        assert retired(admin, NS, "db-wal-receive", "old_slot") == \
            f"its Deployment {NS}/db-wal-receive now streams through slot stashplan_db"
        held = admin.get("Deployment", NS, "db-wal-receive")  # a finalizer holds it while being deleted
        admin.replace({**held, "metadata": {**held["metadata"], "finalizers": ["e2e.stashplan.dev/hold"]}})
        real_kube.rest.delete(f"/apis/apps/v1/namespaces/{NS}/deployments/db-wal-receive")
        assert retired(admin, NS, "db-wal-receive", "stashplan_db") == \
            f"its Deployment {NS}/db-wal-receive is being deleted"
        held = admin.get("Deployment", NS, "db-wal-receive")
        admin.replace({**held, "metadata": {**held["metadata"], "finalizers": []}})
        real_kube.wait_for("the held receiver to go", lambda: not admin.list("Deployment", NS), timeout=60)
        assert retired(admin, NS, "db-wal-receive", "stashplan_db") == f"its Deployment {NS}/db-wal-receive is gone"
        run_once(operator, addons=builtin_addons())  # the plan makes it again
        assert [d["metadata"]["name"] for d in admin.list("Deployment", NS)] == ["db-wal-receive"]

        current = admin.get("BackupConfiguration", NS, "db")
        admin.replace({**current, "spec": _config(PARAMS, paused=True)["spec"]})
        run_once(operator, addons=builtin_addons())
        assert admin.get("Deployment", NS, "db-wal-receive")["spec"]["replicas"] == 0

        current = admin.get("BackupConfiguration", NS, "db")
        admin.replace({**current, "spec": _config([])["spec"]})
        dropped = run_once(operator, addons=builtin_addons())
        assert [(c.action.value, c.kind) for c in dropped.result.applied if c.kind == "Deployment"] == \
               [("delete", "Deployment")]
        real_kube.wait_for("the receiver to be deleted", lambda: not admin.list("Deployment", NS), timeout=60)

        current = admin.get("BackupConfiguration", NS, "db")
        admin.replace({**current, "spec": _config(PARAMS)["spec"]})
        run_once(operator, addons=builtin_addons())
        assert [d["metadata"]["name"] for d in admin.list("Deployment", NS)] == ["db-wal-receive"]
        admin.delete("BackupConfiguration", NS, "db")
        real_kube.wait_for("the garbage collector deletes the receiver", lambda: not admin.list("Deployment", NS),
                           timeout=60)
    finally:
        admin.close()
        operator.close()
