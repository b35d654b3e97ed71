"""The pods stashplan runs and their identity: managed labels, runtimeSettings, session Jobs, the per-namespace
ServiceAccount/RoleBinding of backup pods. Pure: dicts in, dicts out."""

from __future__ import annotations

from collections.abc import Mapping

from stashplan.errors import StashplanError
from stashplan.kinds import MANAGED_LABEL, MANAGED_VALUE
from stashplan.objects import k8s_name, owner_ref

COMPONENT = "app.kubernetes.io/component"


JOB_IDENTITY = "stashplan-job"  # ServiceAccount + RoleBinding per namespace, bound to this ClusterRole


def managed_labels(component: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {MANAGED_LABEL: MANAGED_VALUE, COMPONENT: component, **extra}


def job_identity(namespace: str) -> list[dict]:
    """The ServiceAccount that trigger and session pods run as, bound to the `stashplan-job` ClusterRole
    (read sessions, their invoker, Repository, AppBinding, Secrets; write their status; create Events)."""
    labels = managed_labels("job-identity", {})
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": JOB_IDENTITY, "namespace": namespace, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": JOB_IDENTITY, "namespace": namespace, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOB_IDENTITY},
         "subjects": [{"kind": "ServiceAccount", "name": JOB_IDENTITY, "namespace": namespace}]},
    ]


def cross_namespace_binding(repo: dict, user_ns: str) -> dict:
    """Lets the pods of `user_ns` read a Repository (and its Secret) that its usagePolicy shares with them."""
    repo_ns = repo["metadata"]["namespace"]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": k8s_name(f"{JOB_IDENTITY}-", user_ns), "namespace": repo_ns,
                         "labels": managed_labels("job-identity", {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOB_IDENTITY},
            "subjects": [{"kind": "ServiceAccount", "name": JOB_IDENTITY, "namespace": user_ns}]}


_POD_FIELDS = ("serviceAccountName", "nodeSelector", "affinity", "tolerations", "securityContext",
               "imagePullSecrets", "priorityClassName")


_CONTAINER_FIELDS = ("resources", "env", "envFrom", "securityContext")


def apply_runtime(pod: dict, container: dict, runtime: dict | None) -> None:
    """Copy Stash's runtimeSettings (pod- and container-level) onto a pod spec and its main container."""
    runtime = runtime or {}
    for key in _POD_FIELDS:
        if (runtime.get("pod") or {}).get(key) is not None:
            pod[key] = runtime["pod"][key]
    for key in _CONTAINER_FIELDS:
        value = (runtime.get("container") or {}).get(key)
        if value is None:
            continue
        if key == "env":
            container["env"] = [*(container.get("env") or []), *value]
        else:
            container[key] = value


def runs_transfer(container: Mapping) -> bool:
    """Whether a container runs `stashplan transfer ...`, the program that runs a session's hooks."""
    argv = [str(a) for a in (container.get("command") or [])] + [str(a) for a in container.get("args") or []]
    return len(argv) > 1 and argv[0].rsplit("/", 1)[-1] == "stashplan" and argv[1] == "transfer"


def session_pod(pod: dict, spec: Mapping) -> None:
    """Shape a session Job's pod from its BackupConfiguration or RestoreSession spec: runtimeSettings on the
    pod and its last container. StashplanError when hooks are set but no container runs the transfer that
    would run them (a Task of foreign Functions)."""
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    hooks = {k: v for k, v in (spec.get("hooks") or {}).items() if v}
    if hooks and not any(runs_transfer(c) for c in containers):
        raise StashplanError(
            f"spec.hooks ({', '.join(hooks)}): hooks are run by `stashplan transfer`, and this Task's "
            "Functions do not run it; use a built-in addon Task or remove the hooks"
        )
    if containers:
        apply_runtime(pod, pod["containers"][-1], spec.get("runtimeSettings"))


def session_job(kind: str, session: dict, pod: dict, timeout_s: int | None, invoker: Mapping[str, str]) -> dict:
    prefix = "stash-backup-" if kind == "BackupSession" else "stash-restore-"
    component = "backup-job" if kind == "BackupSession" else "restore-job"
    meta = session["metadata"]
    pod = {"serviceAccountName": JOB_IDENTITY, **pod}
    spec: dict = {"backoffLimit": 0, "template": {"metadata": {"labels": dict(invoker)}, "spec": pod}}
    if timeout_s:
        spec["activeDeadlineSeconds"] = timeout_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": k8s_name(prefix, meta["name"]),
            "namespace": meta["namespace"],
            "labels": managed_labels(component, invoker),
            "ownerReferences": [owner_ref(session)],
        },
        "spec": spec,
    }


def job_name(kind: str, session_name: str) -> str:
    return k8s_name("stash-backup-" if kind == "BackupSession" else "stash-restore-", session_name)


LOCAL_BACKEND_VOLUME = "stash-local-backend"  # Stash's name for a `local` backend's volume in a Job pod


def mount_local_backend(pod: dict, repository: dict) -> None:
    """Put a `local` backend's volume (hostPath, persistentVolumeClaim, nfs ...) into a Job pod, mounted at its
    `mountPath` in every container; the repository is `<mountPath>/<subPath>`, as in local mode."""
    local = ((repository.get("spec") or {}).get("backend") or {}).get("local")
    if not local:
        return
    source = {k: v for k, v in local.items() if k not in ("mountPath", "subPath")}
    if not source:  # no volume named: the directory is the pod's own (as when mountPath is a host path locally)
        return
    pod["volumes"] = [*(pod.get("volumes") or []), {"name": LOCAL_BACKEND_VOLUME, **source}]
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        mount = {"name": LOCAL_BACKEND_VOLUME, "mountPath": local["mountPath"]}
        container["volumeMounts"] = [*(container.get("volumeMounts") or []), mount]
