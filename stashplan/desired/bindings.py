"""The RoleBinding a backup or restore pod needs beyond its namespace's `stashplan-job`: for a custom
`runtimeSettings.pod.serviceAccountName`, always in the invoker's own namespace (no RoleBinding is made in any
other). Pure: dicts in, dicts out."""

from __future__ import annotations

from stashplan.desired.pods import JOB_IDENTITY, managed_labels
from stashplan.objects import k8s_name


def _binding(namespace: str, name: str, subjects: list[tuple[str, str]]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": managed_labels("job-identity", {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOB_IDENTITY},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns} for ns, sa in subjects]}


def custom_identity_bindings(invoker: dict) -> list[dict]:
    """A custom `runtimeSettings.pod.serviceAccountName` gets the RoleBinding `stashplan-job` has, in the invoker's
    namespace only."""
    ns = invoker["metadata"]["namespace"]
    sa = str(((invoker["spec"].get("runtimeSettings") or {}).get("pod") or {}).get("serviceAccountName") or "")
    if not sa or sa == JOB_IDENTITY:
        return []
    return [_binding(ns, k8s_name(f"{JOB_IDENTITY}-", sa), [(ns, sa)])]
