"""The resource kinds stashplan reads and writes: API group/version, plural and scope. Pure data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KindInfo:
    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


STASH_V1A1 = "stash.appscode.com"
KINDS: dict[str, KindInfo] = {
    k.kind: k
    for k in [
        KindInfo("Repository", STASH_V1A1, "v1alpha1", "repositories"),
        KindInfo("BackupConfiguration", STASH_V1A1, "v1beta1", "backupconfigurations"),
        KindInfo("BackupSession", STASH_V1A1, "v1beta1", "backupsessions"),
        KindInfo("RestoreSession", STASH_V1A1, "v1beta1", "restoresessions"),
        KindInfo("Task", STASH_V1A1, "v1beta1", "tasks", namespaced=False),
        KindInfo("Function", STASH_V1A1, "v1beta1", "functions", namespaced=False),
        KindInfo("BackupBlueprint", STASH_V1A1, "v1beta1", "backupblueprints", namespaced=False),
        KindInfo("AppBinding", "appcatalog.appscode.com", "v1alpha1", "appbindings"),
        KindInfo("Secret", "", "v1", "secrets"),
        KindInfo("Namespace", "", "v1", "namespaces", namespaced=False),
        KindInfo("Event", "", "v1", "events"),
        KindInfo("ServiceAccount", "", "v1", "serviceaccounts"),
        KindInfo("Role", "rbac.authorization.k8s.io", "v1", "roles"),
        KindInfo("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings"),
        KindInfo("Pod", "", "v1", "pods"),
        KindInfo("CronJob", "batch", "v1", "cronjobs"),
        KindInfo("Job", "batch", "v1", "jobs"),
        KindInfo("Deployment", "apps", "v1", "deployments"),
        KindInfo("Lease", "coordination.k8s.io", "v1", "leases"),
        KindInfo("CustomResourceDefinition", "apiextensions.k8s.io", "v1", "customresourcedefinitions",
                 namespaced=False),
    ]
}

MANAGED_LABEL = "app.kubernetes.io/managed-by"
INVOKER_TYPE = "stash.appscode.com/invoker-type"
INVOKER_NAME = "stash.appscode.com/invoker-name"
MANAGED_VALUE = "stashplan"


def kind_info(kind: str) -> KindInfo:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None


def identity(obj: dict) -> tuple[str, str, str]:
    """(kind, namespace, name) of a Kubernetes-shaped dict; namespace is "" for cluster-scoped kinds."""
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    ns = meta.get("namespace") or ""
    if kind in KINDS and not KINDS[kind].namespaced:
        ns = ""
    return kind, ns, meta.get("name", "")
