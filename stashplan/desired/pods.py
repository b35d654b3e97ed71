"""The pods stashplan runs and their identity: managed labels, runtimeSettings, session Jobs, the per-namespace
ServiceAccount/RoleBinding of backup pods. Pure: dicts in, dicts out."""

from __future__ import annotations

from collections.abc import Mapping

from stashplan.desired.pitr_claim import mount_pitr_claim
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


_POD_FIELDS = ("serviceAccountName", "nodeSelector", "affinity", "tolerations", "securityContext",
               "imagePullSecrets", "priorityClassName", "priority", "automountServiceAccountToken", "nodeName",
               "schedulerName", "readinessGates", "runtimeClassName", "enableServiceLinks",
               "topologySpreadConstraints")
_CONTAINER_FIELDS = ("resources", "envFrom", "securityContext", "livenessProbe", "readinessProbe", "lifecycle")
# runtimeSettings.container nice/ionice reach the transfer as the environment variables Stash's own Jobs read.
PRIORITY_ENV = (("nice", "adjustment", "NICE_ADJUSTMENT"), ("ionice", "class", "IONICE_CLASS"),
                ("ionice", "classData", "IONICE_CLASS_DATA"))
TMP_VOLUME, TMP_MOUNT = "stash-tmp-dir", "/tmp"
INTERIM_VOLUME, INTERIM_MOUNT = "stash-interim-volume", "/stash-interim-volume"


def priority_env(container: Mapping | None) -> list[dict]:
    """NICE_ADJUSTMENT, IONICE_CLASS, IONICE_CLASS_DATA for the `nice`/`ionice` of container settings."""
    out = []
    for group, key, name in PRIORITY_ENV:
        value = ((container or {}).get(group) or {}).get(key)
        if value is not None:
            out.append({"name": name, "value": str(value)})
    return out


def apply_runtime(pod: dict, container: dict, runtime: dict | None) -> None:
    """Copy Stash's runtimeSettings onto a pod spec and its main container: the pod fields a Job's pod takes,
    the container's resources, probes, lifecycle, securityContext, envFrom and env (after NICE_ADJUSTMENT/
    IONICE_* for `nice`/`ionice`, so that the user's env comes last and wins)."""
    runtime = runtime or {}
    pod_settings = runtime.get("pod") or {}
    for key in _POD_FIELDS:
        if pod_settings.get(key) is not None:
            pod[key] = pod_settings[key]
    settings = runtime.get("container") or {}
    for key in _CONTAINER_FIELDS:
        if settings.get(key) is not None:
            container[key] = settings[key]
    env = [*priority_env(settings), *(settings.get("env") or [])]
    if env:
        container["env"] = [*(container.get("env") or []), *env]


def pod_metadata(runtime: Mapping | None) -> dict:
    """The Job pod template's labels and annotations from runtimeSettings.pod podLabels/podAnnotations."""
    pod_settings = (runtime or {}).get("pod") or {}
    out: dict = {}
    if pod_settings.get("podLabels"):
        out["labels"] = dict(pod_settings["podLabels"])
    if pod_settings.get("podAnnotations"):
        out["annotations"] = dict(pod_settings["podAnnotations"])
    return out


def _mount(pod: dict, volume: dict, path: str) -> None:
    pod["volumes"] = [*(v for v in pod.get("volumes") or [] if v.get("name") != volume["name"]), volume]
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") != path]
        container["volumeMounts"] = [*mounts, {"name": volume["name"], "mountPath": path}]


def session_volumes(pod: dict, spec: Mapping) -> None:
    """tempDir: an emptyDir (medium, sizeLimit) at /tmp of every container; interimVolumeTemplate: a volume
    claimed from that template for the pod's lifetime (a generic ephemeral volume) at /stash-interim-volume."""
    temp = spec.get("tempDir")
    if temp is not None:
        empty = {k: temp[k] for k in ("medium", "sizeLimit") if temp.get(k)}
        _mount(pod, {"name": TMP_VOLUME, "emptyDir": empty}, TMP_MOUNT)
    template = spec.get("interimVolumeTemplate")
    if template:
        claim: dict = {"spec": template["spec"]}
        meta = {k: v for k, v in (template.get("metadata") or {}).items() if k in ("labels", "annotations")}
        if meta:
            claim["metadata"] = meta
        _mount(pod, {"name": INTERIM_VOLUME, "ephemeral": {"volumeClaimTemplate": claim}}, INTERIM_MOUNT)


def runs_transfer(container: Mapping) -> bool:
    """Whether a container runs `stashplan transfer ...`, the program that runs a session's hooks."""
    argv = [str(a) for a in (container.get("command") or [])] + [str(a) for a in container.get("args") or []]
    return len(argv) > 1 and argv[0].rsplit("/", 1)[-1] == "stashplan" and argv[1] == "transfer"


def session_pod(pod: dict, spec: Mapping, cluster: bool = False) -> None:
    """Shape a session Job's pod from its BackupConfiguration or RestoreSession spec: runtimeSettings on the
    pod and its last container, the tempDir and interim volumes, a point-in-time restore's claim (required
    when the pod runs in a `cluster`). StashplanError when hooks are set but no container runs the transfer that
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
    session_volumes(pod, spec)
    mount_pitr_claim(pod, spec, cluster)


def session_job(kind: str, session: dict, pod: dict, timeout_s: int | None, invoker: Mapping[str, str],
                runtime: Mapping | None = None) -> dict:
    prefix = "stash-backup-" if kind == "BackupSession" else "stash-restore-"
    component = "backup-job" if kind == "BackupSession" else "restore-job"
    meta = session["metadata"]
    pod = {"serviceAccountName": JOB_IDENTITY, **pod}
    template_meta = pod_metadata(runtime)
    template_meta["labels"] = {**template_meta.get("labels", {}), **invoker}
    spec: dict = {"backoffLimit": 0, "template": {"metadata": template_meta, "spec": pod}}
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


def cronjob_name(config_name: str, target_namespace: str = "", namespace: str = "") -> str:
    """`stash-trigger-<name>`, or `stash-trigger-<target-namespace>-<name>` for a target in another namespace
    (as Stash names it), at most 52 characters (a CronJob's limit)."""
    prefix = f"stash-trigger-{target_namespace}-" if target_namespace and target_namespace != namespace else \
        "stash-trigger-"
    return k8s_name(prefix, config_name, limit=52)


RECEIVER_ROLE = "wal-receive"  # the component label of a BackupConfiguration's WAL receiver Deployment


def receiver_name(config_name: str) -> str:
    """`<config>-wal-receive`: the WAL receiver Deployment of a BackupConfiguration (stashplan.desired.wal_receive)."""
    return k8s_name(config_name, f"-{RECEIVER_ROLE}")
