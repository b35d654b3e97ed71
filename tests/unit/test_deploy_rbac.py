"""The operator's ClusterRole grants exactly what the kube adapter declares it calls (API_USAGE)."""

from __future__ import annotations

from stashplan.cluster.kube import API_USAGE, JOB_API_USAGE, JOB_STATUS_WRITERS, STATUS_WRITERS
from stashplan.kinds import KINDS
from stashplan.operator.install import deploy_manifests
from tests.fixtures.kube import clusterrole_grants


def declared_calls(usage: dict = API_USAGE, status_writers: tuple = STATUS_WRITERS) -> set[tuple[str, str]]:
    calls = {
        (verb, f"{KINDS[k].group}/{KINDS[k].plural}") for k, verbs in usage.items() for verb in verbs
    }
    calls |= {("patch", f"{KINDS[k].group}/{KINDS[k].plural}/status") for k in status_writers}
    if usage is API_USAGE:
        # Not an API call: RBAC lets the operator bind stashplan-job only because it may `bind` that role.
        calls.add(("bind", "rbac.authorization.k8s.io/clusterroles"))
    return calls


def clusterrole(name: str = "stashplan") -> dict:
    (role,) = [o for o in deploy_manifests() if o["kind"] == "ClusterRole" and o["metadata"]["name"] == name]
    return role


def test_job_clusterrole_grants_exactly_what_backup_and_restore_pods_call() -> None:
    declared = declared_calls(JOB_API_USAGE, JOB_STATUS_WRITERS)
    assert clusterrole_grants(clusterrole("stashplan-job")) == declared


def test_operator_may_bind_only_the_job_clusterrole() -> None:
    [rule] = [r for r in clusterrole()["rules"] if "clusterroles" in r["resources"]]
    assert rule["verbs"] == ["bind"] and rule["resourceNames"] == ["stashplan-job"]


def test_clusterrole_grants_every_call_the_adapter_declares() -> None:
    missing = declared_calls() - clusterrole_grants(clusterrole())
    assert not missing, f"ClusterRole lacks {sorted(missing)}"


def test_clusterrole_grants_nothing_the_adapter_does_not_call() -> None:
    extra = clusterrole_grants(clusterrole()) - declared_calls()
    assert not extra, f"ClusterRole grants unused {sorted(extra)}"


def test_clusterrole_uses_no_wildcards_and_no_secret_writes() -> None:
    for rule in clusterrole()["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        if "secrets" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list"}


def test_every_declared_kind_is_known_and_status_writers_have_a_status_subresource() -> None:
    assert set(API_USAGE) <= set(KINDS)
    assert set(STATUS_WRITERS) <= set(API_USAGE)
