"""The identity of a pod that runs as a custom `runtimeSettings.pod.serviceAccountName` (a user's ServiceAccount,
even `default`): a Role of exactly its invoker's objects (resourceNames: the BackupConfiguration or RestoreSession,
its Repository, its AppBinding, a configuration's WAL receiver Deployment; BackupSessions, whose names the
trigger makes, only to get/create and report status) and a RoleBinding to it, both in the invoker's namespace (no RoleBinding is made in any other). No Secret
permission: the pod receives its Secrets through its spec. Pure: dicts in, dicts out."""

from __future__ import annotations

from stashplan.desired.pods import JOB_IDENTITY, managed_labels, receiver_name
from stashplan.desired.reads import repository_key, target_key
from stashplan.objects import k8s_name

STASH = "stash.appscode.com"


def _rule(group: str, resource: str, verbs: list[str], names: list[str] | None = None) -> dict:
    rule: dict = {"apiGroups": [group], "resources": [resource], "verbs": verbs}
    if names is not None:
        rule["resourceNames"] = names
    return rule


def invoker_rules(kind: str, invoker: dict) -> list[dict]:
    """What a session pod of this BackupConfiguration or RestoreSession calls, limited to its own objects."""
    ns, name = invoker["metadata"]["namespace"], invoker["metadata"]["name"]
    _, repo_ns, repo = repository_key(invoker)
    _, _, target = target_key(invoker)
    rules = []
    if kind == "BackupConfiguration":
        rules += [_rule(STASH, "backupconfigurations", ["get"], [name]),
                  _rule(STASH, "backupsessions", ["get", "create"]),  # the trigger names them when it runs
                  _rule(STASH, "backupsessions/status", ["patch"]),
                  _rule("apps", "deployments", ["get"], [receiver_name(name)])]  # its WAL receiver, at its stop
    else:
        rules += [_rule(STASH, "restoresessions", ["get"], [name]),
                  _rule(STASH, "restoresessions/status", ["patch"], [name])]
    if repo_ns == ns:  # a shared Repository of another namespace reaches the pod through its spec
        rules += [_rule(STASH, "repositories", ["get"], [repo]), _rule(STASH, "repositories/status", ["patch"], [repo])]
    rules += [_rule("appcatalog.appscode.com", "appbindings", ["get"], [target]), _rule("", "events", ["create"])]
    return rules


def custom_identity_bindings(invoker: dict, kind: str = "BackupConfiguration") -> list[dict]:
    """For a custom `runtimeSettings.pod.serviceAccountName`: a Role of the invoker's own objects and a RoleBinding
    of the ServiceAccount to it, in the invoker's namespace; nothing for the namespace's `stashplan-job`."""
    ns, name = invoker["metadata"]["namespace"], invoker["metadata"]["name"]
    sa = str(((invoker["spec"].get("runtimeSettings") or {}).get("pod") or {}).get("serviceAccountName") or "")
    if not sa or sa == JOB_IDENTITY:
        return []
    role = k8s_name(f"{JOB_IDENTITY}-{'backup' if kind == 'BackupConfiguration' else 'restore'}-", name)
    meta = {"name": role, "namespace": ns, "labels": managed_labels("job-identity", {})}
    return [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": dict(meta),
             "rules": invoker_rules(kind, invoker)},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": dict(meta),
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
             "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}]
