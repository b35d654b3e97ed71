"""Trust boundaries on a real control plane (make kube-e2e), asked of the real RBAC authorizer through
SubjectAccessReviews: the operator holds no Secret permission and still plans; a namespace's Job identity, and a
user's ServiceAccount (even `default`) named by runtimeSettings, can read no Secret at all and no object but their
own invoker's; a target of another namespace is refused and nothing is made there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stashplan.api import builtin_addons
from stashplan.cluster.kube import KubeCluster
from stashplan.operator.iteration import run_once
from tests.e2e.test_real_kube import APPBINDING, SYSTEM, installed, operator_kubeconfig  # noqa: F401 (fixtures)
from tests.fixtures.kube_real import RealKube

pytestmark = pytest.mark.real_kube

STASH = "stash.appscode.com"


def allowed(real: RealKube, account: str, verb: str, resource: str, namespace: str, name: str = "",
            group: str = "", subresource: str = "") -> bool:
    """The authorizer's answer for ServiceAccount `account` ("<namespace>:<name>")."""
    sa_ns = account.split(":")[0]
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": f"system:serviceaccount:{account}",
                       "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}", "system:authenticated"],
                       "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group,
                                              "resource": resource, "subresource": subresource,
                                              "name": name}}}  # fmt: skip
    return bool(real.rest.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)["status"].get("allowed"))


def config(name: str, ns: str, target: dict, account: str = "") -> dict:
    spec: dict = {"schedule": "0 3 * * *", "repository": {"name": "repo"}, "target": {"ref": target},
                  "task": {"name": "postgres-backup-15"},
                  "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}
    if account:
        spec["runtimeSettings"] = {"pod": {"serviceAccountName": account}}
    return {"kind": "BackupConfiguration", "metadata": {"name": name, "namespace": ns}, "spec": spec}


@pytest.fixture
def teams(real_kube: RealKube, operator_kubeconfig: str) -> Iterator[tuple[KubeCluster, KubeCluster]]:  # noqa: F811
    """team-a and team-b, each with a database Secret; team-a's configurations planned by the operator's own
    identity: `nightly` runs as the namespace's `default` ServiceAccount, `other` as stashplan-job, `steal`
    names team-b's AppBinding. (admin, operator)."""
    real_kube.reset(("team-a", "team-b"))
    admin, operator = KubeCluster(real_kube.kubeconfig), KubeCluster(operator_kubeconfig)
    for ns in ("team-a", "team-b"):
        admin.create({"kind": "Secret", "metadata": {"name": "db-auth", "namespace": ns},
                      "stringData": {"username": "postgres", "password": f"{ns}-password"}})  # fmt: skip
        admin.create({"kind": "AppBinding", "metadata": {"name": "db", "namespace": ns},
                      "spec": {"type": "kubedb.com/postgres", "version": "15", "secret": {"name": "db-auth"},
                               "clientConfig": {"url": f"postgresql://127.0.0.1:5432/{ns}"}}})  # fmt: skip
    admin.create({"kind": "Secret", "metadata": {"name": "unrelated", "namespace": "team-a"},
                  "stringData": {"token": "not-for-backups"}})  # fmt: skip
    admin.create({"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "team-a"},
                  "stringData": {"RESTIC_PASSWORD": "pw"}})  # fmt: skip
    admin.create({"kind": "Repository", "metadata": {"name": "repo", "namespace": "team-a"},
                  "spec": {"backend": {"local": {"mountPath": "/tmp/r"}, "storageSecretName": "repo-secret"}}})
    own = {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "db"}
    admin.create(config("nightly", "team-a", own, account="default"))
    admin.create(config("other", "team-a", own))
    admin.create(config("steal", "team-a", {**own, "namespace": "team-b"}))
    try:
        yield admin, operator
    finally:
        admin.close()
        operator.close()


def test_the_operator_plans_without_any_secret_permission(real_kube: RealKube,
                                                          teams: tuple[KubeCluster, KubeCluster]) -> None:
    admin, operator = teams
    for verb in ("get", "list", "watch"):
        for ns in ("", "team-a", "team-b", SYSTEM):
            assert not allowed(real_kube, f"{SYSTEM}:stashplan", verb, "secrets", ns), (verb, ns)
    done = run_once(operator, addons=builtin_addons())  # as the operator's ServiceAccount: no Forbidden
    assert sorted(c["metadata"]["name"] for c in admin.list("CronJob", "team-a")) == [
        "stash-trigger-nightly", "stash-trigger-other"]
    assert done.plan.refusals == (
        "BackupConfiguration team-a/steal: spec.target.ref.namespace: AppBinding team-b/db is in another namespace; "
        "a target must be in the BackupConfiguration's own namespace (team-a), so that a namespace reaches only its "
        "own objects (Stash's cross-namespace targets are not supported: create the BackupConfiguration in team-b)",)
    assert admin.get("BackupConfiguration", "team-a", "steal")["status"]["phase"] == "Invalid"
    assert not [b for b in admin.list("RoleBinding", "team-b") if b["metadata"]["name"].startswith("stashplan")]
    assert not admin.list("CronJob", "team-b")


def test_a_namespaces_job_identities_read_no_secret_and_nothing_of_another_namespace(
    real_kube: RealKube, teams: tuple[KubeCluster, KubeCluster]
) -> None:
    _admin, operator = teams
    run_once(operator, addons=builtin_addons())
    for account in ("team-a:stashplan-job", "team-a:default"):
        for ns, name in (("team-b", "db-auth"), ("team-a", "unrelated"), ("team-a", "repo-secret"),
                         ("team-a", "db-auth")):
            assert not allowed(real_kube, account, "get", "secrets", ns, name), (account, ns, name)
        assert not allowed(real_kube, account, "list", "secrets", "team-a"), account
        assert not allowed(real_kube, account, "get", "appbindings", "team-b", "db", "appcatalog.appscode.com")
        assert not allowed(real_kube, account, "get", "backupconfigurations", "team-b", "x", STASH)
    # `default` (every pod of team-a runs as it) reaches only the objects of its own configuration
    default = "team-a:default"
    assert allowed(real_kube, default, "get", "backupconfigurations", "team-a", "nightly", STASH)
    assert allowed(real_kube, default, "get", "repositories", "team-a", "repo", STASH)
    assert allowed(real_kube, default, "get", "appbindings", "team-a", "db", "appcatalog.appscode.com")
    assert not allowed(real_kube, default, "get", "backupconfigurations", "team-a", "other", STASH)
    assert not allowed(real_kube, default, "get", "restoresessions", "team-a", "any", STASH)
    assert not allowed(real_kube, default, "get", "appbindings", "team-a", "elsewhere", "appcatalog.appscode.com")
    # a WAL receiver reads its own Deployment when it stops (gone: it drops its slot), and only that one
    assert allowed(real_kube, default, "get", "deployments", "team-a", "nightly-wal-receive", "apps")
    assert not allowed(real_kube, default, "get", "deployments", "team-a", "other-wal-receive", "apps")
    assert not allowed(real_kube, default, "list", "deployments", "team-a", "", "apps")
    # the namespace's own job identity still does its work
    job = "team-a:stashplan-job"
    assert allowed(real_kube, job, "get", "backupconfigurations", "team-a", "other", STASH)
    assert allowed(real_kube, job, "get", "deployments", "team-a", "other-wal-receive", "apps")
    assert not allowed(real_kube, job, "get", "deployments", "team-b", "db-wal-receive", "apps")
    assert allowed(real_kube, job, "create", "backupsessions", "team-a", "", STASH)
    assert allowed(real_kube, job, "patch", "backupsessions", "team-a", "s-1", STASH, subresource="status")
