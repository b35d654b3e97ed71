"""Beside Stash on a real control plane (make kube-e2e): Stash's own CRDs (tests/data/stash-crds, labelled and
annotated as Helm's release `stash` leaves them) are never overwritten by `stashplan install --cluster kube`
unless --adopt-crds; the operator, finding them another installation's, acts only in opted-in scope: objects in
an unlabelled namespace get no status, CronJob, Job, identity or Event, those in a labelled one are backed up."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from stashplan.cluster.kube import KubeCluster
from tests.e2e.test_real_kube import APPBINDING, installed, operator_kubeconfig  # noqa: F401 (fixtures)
from tests.fixtures.kube_real import RealKube, apply_crds
from tests.kube.rest import Rest

pytestmark = pytest.mark.real_kube

STASH_CRDS = Path(__file__).resolve().parents[1] / "data" / "stash-crds"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
HELM_LABELS = {"app.kubernetes.io/managed-by": "Helm"}
HELM_ANNOTATIONS = {"meta.helm.sh/release-name": "stash", "meta.helm.sh/release-namespace": "stash"}
OPTED, LEFT = "e2e-beside-opted", "e2e-beside-left"


def put_crds(rest: Rest, docs: list[dict]) -> None:
    """Replace each CRD by `docs`' (kubectl replace), then wait until every one is Established and served."""
    for doc in docs:
        current = rest.get(f"{CRDS}/{doc['metadata']['name']}")
        body = dict(doc, metadata=dict(doc["metadata"], resourceVersion=current["metadata"]["resourceVersion"]))
        body["metadata"].pop("creationTimestamp", None)
        rest.put(f"{CRDS}/{doc['metadata']['name']}", body)
    end = time.monotonic() + 60
    for doc in docs:
        spec = doc["spec"]
        while True:
            crd = rest.get(f"{CRDS}/{doc['metadata']['name']}")
            conds = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conds.get("Established") == "True" and crd["metadata"].get("labels") == doc["metadata"].get("labels"):
                rest.get(f"/apis/{spec['group']}/{spec['versions'][0]['name']}/{spec['names']['plural']}", limit="1")
                break
            assert time.monotonic() < end, f"CRD {doc['metadata']['name']} not Established: {crd.get('status')}"
            time.sleep(0.2)


def stash_crds() -> list[dict]:
    """Stash's seven CRDs as its Helm release `stash` installs them."""
    docs = []
    for path in sorted(STASH_CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        meta = doc["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **HELM_LABELS}
        meta["annotations"] = {**(meta.get("annotations") or {}), **HELM_ANNOTATIONS}
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def beside_stash(real_kube: RealKube, installed: list[dict]) -> Iterator[None]:  # noqa: F811
    """Stash's CRDs in place of stashplan's for this module; stashplan's put back after it."""
    put_crds(real_kube.rest, stash_crds())
    try:
        yield
    finally:
        out = subprocess.run([sys.executable, "-m", "stashplan", "crds"], check=True, capture_output=True, text=True)
        put_crds(real_kube.rest, [d for d in yaml.safe_load_all(out.stdout) if d and "stash.appscode.com" in
                                  d["metadata"]["name"]])
        apply_crds(real_kube.rest)


def stashplan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stashplan", *args], capture_output=True, text=True)


def test_install_refuses_to_overwrite_stashs_crds_in_one_line_and_adopts_them_only_when_told(
    real_kube: RealKube, beside_stash: None
) -> None:
    where = ["--cluster", "kube", "--kubeconfig", real_kube.kubeconfig]
    refused = stashplan("install", *where)
    assert refused.returncode == 1 and not refused.stdout
    assert refused.stderr.strip().splitlines() == [
        "error: install: CustomResourceDefinition backupblueprints.stash.appscode.com and 6 more belong to Helm "
        "release stash in namespace stash (meta.helm.sh/release-name); refusing to overwrite them (--skip-crds runs "
        "stashplan beside it on its CRDs, in opted-in scope; --adopt-crds takes them over)"]
    crds = stashplan("crds", *where)
    assert crds.returncode == 1 and "crds: CustomResourceDefinition" in crds.stderr
    beside = stashplan("install", "--skip-crds")
    assert beside.returncode == 0 and "CustomResourceDefinition" not in beside.stdout
    adopted = stashplan("install", *where, "--adopt-crds")
    assert adopted.returncode == 0, adopted.stderr
    taken = [d for d in yaml.safe_load_all(adopted.stdout) if d and d["kind"] == "CustomResourceDefinition"]
    marks = {d["metadata"]["name"]: d["metadata"].get("annotations", {}).get("stashplan.dev/adopted-from")
             for d in taken}
    assert sum(1 for m in marks.values() if m and m.startswith("Helm release stash")) == 7, marks
    for name in (n for n in marks if n.endswith(".stash.appscode.com")):  # printed only: Stash's CRDs unchanged
        assert real_kube.rest.get(f"{CRDS}/{name}")["metadata"]["labels"]["app.kubernetes.io/name"] == "stash"


def objects(ns: str) -> list[dict]:
    """A BackupConfiguration as a Stash user makes it (no stashplan label) and a BackupSession as Stash's CronJob
    makes it, with what they name."""
    return [
        {"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": ns},
         "stringData": {"RESTIC_PASSWORD": "pw"}},
        {"kind": "Repository", "metadata": {"name": "repo", "namespace": ns},
         "spec": {"backend": {"local": {"mountPath": f"/tmp/{ns}", "hostPath": {"path": f"/tmp/{ns}"}},
                              "storageSecretName": "repo-secret"}}},
        {"kind": "AppBinding", "metadata": {"name": "pg", "namespace": ns},
         "spec": {"type": "kubedb.com/postgres", "version": "15", "secret": {"name": "repo-secret"},
                  "clientConfig": {"url": "postgresql://127.0.0.1:1/none"}}},
        {"kind": "BackupConfiguration", "metadata": {"name": "db", "namespace": ns},
         "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"}, "task": {"name": "postgres-backup-15"},
                  "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "pg"}},
                  "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}},
        {"kind": "BackupSession", "metadata": {"name": "db-1", "namespace": ns, "labels": {
            "stash.appscode.com/invoker-type": "BackupConfiguration", "stash.appscode.com/invoker-name": "db"}},
         "spec": {"invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration", "name": "db"}}},
    ]  # fmt: skip


def test_the_operator_beside_stash_acts_only_on_opted_in_namespaces(
    real_kube: RealKube, beside_stash: None, operator_kubeconfig: str  # noqa: F811
) -> None:
    real_kube.reset((OPTED, LEFT))
    real_kube.rest.merge_patch(f"/api/v1/namespaces/{OPTED}", {"metadata": {"labels": {"stashplan.dev/scope": "stashplan"}}})
    real_kube.rest.merge_patch(f"/api/v1/namespaces/{LEFT}", {"metadata": {"labels": {"stashplan.dev/scope": None}}})
    admin = KubeCluster(real_kube.kubeconfig)
    try:
        for ns in (OPTED, LEFT):
            for obj in objects(ns):
                admin.create(obj)
        # the operator's own identity, its scope not given: detected from the CRDs' owner
        done = stashplan("apply", "--cluster", "kube", "--kubeconfig", operator_kubeconfig, "--auto-approve")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "scope: opted-in, because CustomResourceDefinition backupblueprints.stash.appscode.com belongs to " \
               "Helm release stash" in done.stderr, done.stderr
        assert "objects left to Stash (out of scope)" in done.stdout
        assert LEFT not in done.stdout, done.stdout
        # the unlabelled namespace: untouched
        assert "status" not in admin.get("BackupConfiguration", LEFT, "db")
        assert "status" not in admin.get("BackupSession", LEFT, "db-1")
        assert not admin.list("CronJob", LEFT) and not admin.list("Job", LEFT)
        assert not [a for a in admin.list("ServiceAccount", LEFT) if a["metadata"]["name"] == "stashplan-job"]
        assert not real_kube.rest.get(f"/api/v1/namespaces/{LEFT}/events")["items"]
        # the labelled one: its CronJob, its session's Job, its status
        assert [c["metadata"]["name"] for c in admin.list("CronJob", OPTED)] == ["stash-trigger-db"]
        assert [j["metadata"]["name"] for j in admin.list("Job", OPTED)] == ["stash-backup-db-1"]
        assert admin.get("BackupConfiguration", OPTED, "db")["status"]["phase"] == "Ready"
        again = stashplan("plan", "--cluster", "kube", "--kubeconfig", operator_kubeconfig, "-n", OPTED)
        assert again.returncode == 0 and "No changes." in again.stdout, again.stdout  # Stash's schemas keep it all
        # a plan with --scope all (STASHPLAN_SCOPE) would act there too: the flag wins over detection
        planned = subprocess.run([sys.executable, "-m", "stashplan", "plan", "--cluster", "kube", "--kubeconfig",
                                  operator_kubeconfig, "-n", LEFT], capture_output=True, text=True,
                                 env={**_env(), "STASHPLAN_SCOPE": "all"})  # fmt: skip
        assert planned.returncode == 0, planned.stderr
        assert f"+ CronJob/{LEFT}/stash-trigger-db will be created" in planned.stdout, planned.stdout
        assert "scope: opted-in" not in planned.stderr
    finally:
        admin.close()
        real_kube.reset((OPTED, LEFT))


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
