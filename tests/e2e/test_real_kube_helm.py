"""Against a real control plane (make kube-e2e): the Helm chart installed with `helm install`, its operator
Deployment's pods (run by the test kubelet) taking a scheduled PostgreSQL backup through the real CronJob and
Job controllers into S3, and `helm uninstall` leaving nothing of stashplan's but the CRDs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import yaml

from stashplan.cluster.kube import KubeCluster
from tests.e2e.test_real_kube import finished, pod_logs, stash_objects, status_of
from tests.fixtures.databases import PgDatabase
from tests.fixtures.helm import CHART, Helm
from tests.fixtures.kube_real import RealKube
from tests.fixtures.pushgateway import read_metrics
from tests.fixtures.s3 import S3Bucket
from tests.kube.controlplane import free_port
from tests.kube.rest import ApiError

pytestmark = pytest.mark.real_kube

RELEASE_NS = "stashplan-helm"
CLUSTER_WIDE = (("/apis/rbac.authorization.k8s.io/v1/clusterroles", ("stashplan", "stashplan-job")),
                ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", ("stashplan",)))  # fmt: skip
# What a namespace may hold of stashplan's: the kinds the chart renders, and what the operator makes for itself.
NAMESPACED = ("/apis/apps/v1/namespaces/{ns}/deployments", "/api/v1/namespaces/{ns}/services",
              "/api/v1/namespaces/{ns}/configmaps", "/api/v1/namespaces/{ns}/secrets",
              "/api/v1/namespaces/{ns}/pods", "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
              "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings")  # fmt: skip


def names(real: RealKube, path: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in real.rest.get(path)["items"])


def stashplans_in(real: RealKube, ns: str) -> dict[str, list[str]]:
    """Every object of the chart's kinds in `ns`, and the service accounts, other than what Kubernetes puts in
    every namespace (the `default` ServiceAccount, the `kube-root-ca.crt` ConfigMap)."""
    found = {path.format(ns=ns): [n for n in names(real, path.format(ns=ns)) if n != "kube-root-ca.crt"]
             for path in NAMESPACED}  # fmt: skip
    found["serviceaccounts"] = [n for n in names(real, f"/api/v1/namespaces/{ns}/serviceaccounts") if n != "default"]
    return {path: items for path, items in found.items() if items}


def cluster_wide(real: RealKube) -> list[str]:
    return [f"{path.rsplit('/', 1)[-1]}/{n}" for path, wanted in CLUSTER_WIDE for n in names(real, path) if n in wanted]


def clear_cluster_wide(real: RealKube) -> None:
    """Remove what a `stashplan install` of another test module left cluster-wide (helm adopts nothing)."""
    for path, wanted in CLUSTER_WIDE:
        for name in wanted:
            try:
                real.rest.delete(f"{path}/{name}")
            except ApiError as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def operator_pods(real_kube: RealKube) -> Iterator[Callable[[dict], list[str]]]:
    """Start the replicas of a Deployment as Pods made from its template (there is no Deployment controller
    here), each with its own health port as pods share the host's loopback; deleted again afterwards."""
    started: list[str] = []

    def start(deploy: dict) -> list[str]:
        for i in range(deploy["spec"]["replicas"]):
            template = yaml.safe_load(yaml.safe_dump(deploy["spec"]["template"]))
            container = template["spec"]["containers"][0]
            container["args"] = [a for a in container["args"] if not a.startswith("--health-port")]
            container["args"].append(f"--health-port={free_port()}")
            name = f"stashplan-helm-{i}"
            pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                   "metadata": {"name": name, "namespace": RELEASE_NS, "labels": template["metadata"]["labels"]}}  # fmt: skip
            real_kube.rest.post(f"/api/v1/namespaces/{RELEASE_NS}/pods", pod)
            started.append(name)
        return list(started)

    yield start
    for name in started:
        try:
            real_kube.rest.delete(f"/api/v1/namespaces/{RELEASE_NS}/pods/{name}", gracePeriodSeconds="0")
        except ApiError:
            pass
    real_kube.wait_for("the operator pods stopped", lambda: not any(
        r.namespace == RELEASE_NS for r in real_kube.kubelet.runs.values()))  # fmt: skip


def test_helm_install_runs_a_scheduled_backup_and_helm_uninstall_leaves_only_the_crds(
    real_kube: RealKube, helm: Helm, operator_pods: Callable[[dict], list[str]],
    pg_database: Callable[[], PgDatabase], s3_bucket: S3Bucket, pushgateway: str,
) -> None:
    ns = "e2e-helm"
    real_kube.reset((ns,))
    clear_cluster_wide(real_kube)
    real_kube.ensure_namespace(RELEASE_NS)
    kubeconfig = real_kube.kubeconfig
    db = pg_database()
    db.sql("CREATE TABLE items(id int primary key, name text); INSERT INTO items VALUES (1, 'one')")
    admin = KubeCluster(kubeconfig)
    try:
        out = helm("install", "stashplan", str(CHART), "--namespace", RELEASE_NS, "--set", "image.tag=e2e",
                   "--set", "pushgateway.enabled=false", "--set", f"pushgateway.url={pushgateway}",
                   "--set", "extraArgs={--interval=2}", kubeconfig=kubeconfig).stdout  # fmt: skip
        assert "STATUS: deployed" in out, out
        deploy = real_kube.rest.get(f"/apis/apps/v1/namespaces/{RELEASE_NS}/deployments/stashplan")
        assert deploy["metadata"]["annotations"]["meta.helm.sh/release-name"] == "stashplan"
        assert deploy["spec"]["replicas"] == 2
        for obj in stash_objects(ns, db, s3_bucket, "* * * * *"):
            admin.create(obj)
        operator_pods(deploy)
        real_kube.wait_for("the operator creates the trigger CronJob", lambda: admin.list("CronJob", ns), timeout=90)
        # the real CronJob controller fires at the next minute; the trigger pod creates the session
        sessions = real_kube.wait_for("a BackupSession from the CronJob's trigger Job",
                                      lambda: admin.list("BackupSession", ns), timeout=150)  # fmt: skip
        name = sessions[0]["metadata"]["name"]  # type: ignore[index]
        config = admin.get("BackupConfiguration", ns, "app-pg-backup")
        admin.replace(dict(config, spec=dict(config["spec"], paused=True)))  # no second run
        real_kube.wait_for(f"BackupSession {name} finishes",
                           lambda: finished(admin, "BackupSession", ns, name), timeout=240)  # fmt: skip
        status = status_of(admin, "BackupSession", ns, name)
        assert status["phase"] == "Succeeded", (status, pod_logs(real_kube, ns), pod_logs(real_kube, RELEASE_NS))
        repo = status_of(admin, "Repository", ns, "s3-repo")
        assert repo["snapshotCount"] == 1 and repo["integrity"] is True, repo
        assert any(line.startswith("stash_backup_session_success{") and line.endswith(" 1")
                   for line in read_metrics(pushgateway).splitlines())  # fmt: skip
    finally:
        admin.close()
    lease = real_kube.rest.get(f"/apis/coordination.k8s.io/v1/namespaces/{RELEASE_NS}/leases/stashplan-operator")
    assert lease["spec"]["holderIdentity"].startswith("stashplan-helm-")  # the Lease is the release namespace's

    helm("uninstall", "stashplan", "--namespace", RELEASE_NS, kubeconfig=kubeconfig)
    real_kube.rest.delete(f"/api/v1/namespaces/{RELEASE_NS}/pods", gracePeriodSeconds="0")
    real_kube.wait_for("the operator pods are gone", lambda: not names(real_kube, f"/api/v1/namespaces/{RELEASE_NS}/pods"))
    assert stashplans_in(real_kube, RELEASE_NS) == {}
    assert cluster_wide(real_kube) == []
    crds = names(real_kube, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    assert "backupconfigurations.stash.appscode.com" in crds and "repositories.stash.appscode.com" in crds
    assert admin_sees_backup_configuration(kubeconfig, ns)  # the user's objects stay with the CRDs


def admin_sees_backup_configuration(kubeconfig: str, ns: str) -> bool:
    admin = KubeCluster(kubeconfig)
    try:
        return [c["metadata"]["name"] for c in admin.list("BackupConfiguration", ns)] == ["app-pg-backup"]
    finally:
        admin.close()
