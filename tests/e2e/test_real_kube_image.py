"""Against a real control plane (make kube-e2e): a Pod of the stashplan image reaches the API server with the
in-cluster config alone (KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's token and CA mounted where
Kubernetes mounts them) and is held to its ServiceAccount's Role; without the token it fails, saying so.
In image mode (STASHPLAN_TEST_KUBELET_RUNTIME=runc, make kube-e2e's default) the Pod runs from the image."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.kube_real import RealKube
from tests.kube.podimage import SA_PATH

pytestmark = pytest.mark.real_kube

NS = "e2e-incluster"
STASH = "stash.appscode.com/v1beta1"
RBAC = "rbac.authorization.k8s.io/v1"


def setup(real: RealKube) -> None:
    """ServiceAccount `reader` allowed to read BackupConfigurations of NS (nothing else), and one to read."""
    real.reset((NS,))
    rbac = f"/apis/{RBAC}/namespaces/{NS}"
    real.rest.post(f"/api/v1/namespaces/{NS}/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}})  # fmt: skip
    real.rest.post(f"{rbac}/roles", {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "reader"}, "rules": [
        {"apiGroups": ["stash.appscode.com"], "resources": ["backupconfigurations"], "verbs": ["get", "list"]}]})  # fmt: skip
    real.rest.post(f"{rbac}/rolebindings", {
        "apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": NS}]})  # fmt: skip
    real.rest.post(f"/apis/{STASH}/namespaces/{NS}/backupconfigurations", {
        "apiVersion": STASH, "kind": "BackupConfiguration", "metadata": {"name": "nightly-db"},
        "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"}, "task": {"name": "postgres-backup-15"},
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding", "name": "pg"}},
                 "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}})  # fmt: skip


def run_pod(real: RealKube, name: str, args: list[str], **spec: object) -> tuple[str, str]:
    """A Pod of the image (its entry point, `args`) as ServiceAccount `reader`; its phase and log once ended."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
           "spec": {"serviceAccountName": "reader", "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "stashplan:e2e", "args": args}], **spec}}  # fmt: skip
    real.rest.post(f"/api/v1/namespaces/{NS}/pods", pod)

    def ended() -> str:
        phase = real.rest.get(f"/api/v1/namespaces/{NS}/pods/{name}").get("status", {}).get("phase", "")
        return phase if phase in ("Succeeded", "Failed") else ""

    phase = str(real.wait_for(f"pod {name} ends", ended, timeout=90))
    status = real.rest.get(f"/api/v1/namespaces/{NS}/pods/{name}")["status"]
    logs = [p.read_text(errors="replace") for p in real.kubelet.workdir.glob(f"{NS}_{name}_*/main.log")]
    return phase, "".join(logs) or str(status.get("message") or status)


def test_a_pod_of_the_image_reaches_the_api_server_with_its_service_account_alone(real_kube: RealKube) -> None:
    setup(real_kube)
    phase, log = run_pod(real_kube, "lists", ["get", "backupconfigurations", "-n", NS])
    assert phase == "Succeeded", log
    assert "nightly-db" in log
    phase, log = run_pod(real_kube, "forbidden", ["get", "cronjobs", "-n", NS])
    assert phase == "Failed" and "system:serviceaccount:e2e-incluster:reader" in log, log
    phase, log = run_pod(real_kube, "no-token", ["get", "backupconfigurations", "-n", NS],
                         automountServiceAccountToken=False)  # fmt: skip
    assert phase == "Failed" and "in-cluster config" in log, log
    if real_kube.kubelet.runtime is None:
        return
    [folder] = real_kube.kubelet.workdir.glob(f"{NS}_lists_*")
    config = json.loads((folder / "bundles" / "main" / "config.json").read_text())
    assert config["process"]["user"]["uid"] == 65532 and config["process"]["args"][0] == "stashplan"
    assert not any(e.startswith("STASHPLAN_SERVICE_ACCOUNT_DIR=") for e in config["process"]["env"])
    assert SA_PATH in [m["destination"] for m in config["mounts"]]
    assert not any(n["type"] == "network" for n in config["linux"]["namespaces"])
