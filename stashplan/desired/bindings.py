"""RoleBindings a backup or restore pod needs beyond its namespace's `stashplan-job`: for a custom
`runtimeSettings.pod.serviceAccountName`, and to read an AppBinding (and its Secrets) of another namespace.
Pure: dicts in, dicts out."""

from __future__ import annotations

from stashplan.desired.pods import JOB_IDENTITY, managed_labels
from stashplan.objects import k8s_name


def _binding(namespace: str, name: str, subjects: list[tuple[str, str]]) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace, "labels": managed_labels("job-identity", {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOB_IDENTITY},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns} for ns, sa in subjects]}


def custom_identity_bindings(invoker: dict, repo: dict | None, target: dict | None) -> list[dict]:
    """What a pod needs beyond `stashplan-job`: a custom `runtimeSettings.pod.serviceAccountName` gets the same
    RoleBinding (and the one in the Repository's namespace), and the pods may read an AppBinding (and its
    Secrets) in another namespace."""
    ns = invoker["metadata"]["namespace"]
    sa = str(((invoker["spec"].get("runtimeSettings") or {}).get("pod") or {}).get("serviceAccountName") or "")
    accounts = [JOB_IDENTITY] + ([sa] if sa and sa != JOB_IDENTITY else [])
    out = []
    if len(accounts) > 1:
        out.append(_binding(ns, k8s_name(f"{JOB_IDENTITY}-", sa), [(ns, sa)]))
        if repo is not None and repo["metadata"]["namespace"] != ns:
            out.append(_binding(repo["metadata"]["namespace"], k8s_name(f"{JOB_IDENTITY}-{ns}-", sa), [(ns, sa)]))
    if target is not None and target["metadata"]["namespace"] != ns:
        suffix = "" if len(accounts) == 1 else f"-{sa}"
        out.append(_binding(target["metadata"]["namespace"], k8s_name(f"{JOB_IDENTITY}-{ns}-target", suffix),
                            [(ns, a) for a in accounts]))
    return out
