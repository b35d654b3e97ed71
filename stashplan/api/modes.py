"""Fields that one way of running cannot honour, refused at plan time with one line each: in local mode
(Jobs run as processes on this machine) what only a kubelet or scheduler can act on; in kube mode what
needs the database's own pod; where each writes a point-in-time restore. Pure: manifests in, lines out."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

LOCAL_REASON = "local mode runs the Job as a process on this machine"
LOCAL_POD_FIELDS = ("serviceAccountName", "podLabels", "podAnnotations")  # kept on the stored Job as given
LOCAL_CONTAINER_REFUSED = ("livenessProbe", "readinessProbe", "lifecycle", "envFrom")
# securityContext keys local mode honours (stashplan.cluster.local.run_as starts the process as that user);
# supplementalGroups is a pod key.
LOCAL_SECURITY_KEYS = ("runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups")
RESOURCES_REASON = (f"{LOCAL_REASON}, where no cgroup enforces requests or limits (a process rlimit is not a "
                    "memory limit); use a cluster, or leave resources out to run here")
HOOK_KINDS = {"BackupConfiguration": ("preBackup", "postBackup"), "RestoreSession": ("preRestore", "postRestore")}


def _label(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{where}{meta.get('name', '?')}"


PITR_TASK = "postgres-pitr-restore-"


def _pitr_restore(obj: dict) -> bool:
    spec = obj.get("spec") or {}
    return obj.get("kind") == "RestoreSession" and (
        bool(spec.get("pitr")) or str((spec.get("task") or {}).get("name") or "").startswith(PITR_TASK))


PITR_MOUNT = "/stashplan-pitr-data"  # where a restore Job in a cluster mounts the claim named by claimName
CLAIM_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a PersistentVolumeClaim's name (DNS subdomain)


def _pitr(obj: dict, mode: str) -> Iterator[tuple[str, str]]:
    """A PostgreSQL point-in-time restore writes a data directory with Task postgres-pitr-restore-<v>: in local
    mode an absolute `pgdata` on this machine; in a cluster into the PersistentVolumeClaim `claimName` of the
    RestoreSession's namespace, `pgdata` a path inside it."""
    if not _pitr_restore(obj):
        return
    task = (obj.get("spec") or {}).get("task") or {}
    if not str(task.get("name") or "").startswith(PITR_TASK):
        yield ("spec.task.name", f"spec.pitr needs Task {PITR_TASK}<version> (a base backup and its WAL are "
               "restored into a data directory, not replayed through a connection)")
        return
    params = {str(p.get("name")): str(p.get("value") or "") for p in task.get("params") or [] if isinstance(p, dict)}
    pgdata, claim = params.get("pgdata", ""), params.get("claimName", "")
    if params.get("recover", "").strip().lower() not in ("", "true", "false"):
        yield ("spec.task.params", f"Task param recover must be \"true\" (recover before Succeeded) or \"false\" "
               f"(write the directory only), not {params['recover']!r}")
    if mode == "kube":
        yield from pitr_pod_problems(params)
        return
    if claim:
        yield ("spec.task.params", f"Task param claimName: {LOCAL_REASON}, with no PersistentVolumeClaim to "
               "mount; leave claimName out and give pgdata as an absolute directory")
        return
    if not pgdata.startswith("/"):
        given = f" (given {pgdata!r})" if pgdata else ""
        yield ("spec.task.params", f"Task param pgdata must name the data directory to write, as an absolute path "
               f"(new or empty){given}; the target AppBinding is not connected to")


def pitr_pod_problems(params: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(field, why) for the Task params of a point-in-time restore run by a Job in a cluster: where it writes
    (claimName, pgdata), and `recover`, which needs PostgreSQL's server programs that stashplan's image lacks."""
    yield from pitr_claim_problems(params.get("claimName", ""), params.get("pgdata", ""))
    if params.get("recover", "").strip().lower() != "false":
        yield ("spec.task.params", "Task param recover: a restore Job in a cluster cannot recover the directory "
               "(stashplan's image carries PostgreSQL's client programs, not its server); give recover \"false\": "
               "the directory is written set up to recover, and recovers when PostgreSQL first starts on it")


def pitr_claim_problems(claim: str, pgdata: str) -> Iterator[tuple[str, str]]:
    """(field, why) for Task params claimName and pgdata of a restore into a claim (claimName required)."""
    if not claim:
        yield ("spec.task.params", "Task param claimName must name the PersistentVolumeClaim to restore into (an "
               "existing claim in the RestoreSession's namespace, mounted by the restore Job); pgdata is then a "
               "path inside it (default pgdata)")
    elif "/" in claim:
        yield ("spec.task.params", f"Task param claimName {claim!r} names a claim in another namespace; a pod "
               "mounts only claims of its own namespace (the RestoreSession's): give the claim's name alone")
    elif not CLAIM_NAME.fullmatch(claim):
        yield ("spec.task.params", f"Task param claimName {claim!r} is not a PersistentVolumeClaim name")
    elif pgdata.startswith("/"):
        yield ("spec.task.params", f"Task param pgdata {pgdata!r} is absolute; with claimName it is a path inside "
               "the claim (default pgdata)")
    elif ".." in pgdata.split("/") or (pgdata and not pgdata.strip("./")):
        yield ("spec.task.params", f"Task param pgdata {pgdata!r} is not a directory inside the claim; give a "
               "subdirectory (a volume's root may hold lost+found, and PostgreSQL needs an empty directory)")


def _kube(obj: dict) -> Iterator[tuple[str, str]]:
    yield from _pitr(obj, "kube")
    hooks = (obj.get("spec") or {}).get("hooks") or {}
    for hook_type in HOOK_KINDS.get(str(obj.get("kind")), ()):
        if (hooks.get(hook_type) or {}).get("containerName"):
            yield (f"spec.hooks.{hook_type}.containerName",
                   "stashplan runs hooks in the backup or restore Job's own container, not in a container of "
                   "the database's pod; remove containerName (the command then runs in the Job)")


Identity = tuple[int, int]  # (uid, gid) of the process that runs local Jobs


def _security(context: dict, prefix: str, identity: Identity | None) -> Iterator[tuple[str, str]]:
    """A securityContext in local mode: the keys a process can honour pass (a change of user only where local
    Jobs are started by root, or it is no change); the others are refused, one line each."""
    for key, value in context.items():
        if value is None:
            continue
        if key not in LOCAL_SECURITY_KEYS:
            yield (f"{prefix}.{key}", f"{LOCAL_REASON}, where no container runtime enforces it (only runAsUser, "
                   "runAsGroup, runAsNonRoot and supplementalGroups are honoured here); use a cluster")
            continue
        uid, gid = identity if identity is not None else (-1, -1)
        own = {"runAsUser": uid, "runAsGroup": gid}.get(key)
        if key != "runAsNonRoot" and uid != 0 and value not in (own, []):
            yield (f"{prefix}.{key}", f"{LOCAL_REASON} as the user stashplan runs as (uid {uid}, gid {gid}); "
                   f"starting it with {key} {value} needs stashplan to run as root; use a cluster")


def _container_settings(settings: dict, prefix: str, identity: Identity | None) -> Iterator[tuple[str, str]]:
    if settings.get("resources"):
        yield f"{prefix}.resources", RESOURCES_REASON
    if settings.get("securityContext"):
        yield from _security(settings["securityContext"], f"{prefix}.securityContext", identity)
    for key in LOCAL_CONTAINER_REFUSED:
        if settings.get(key):
            yield f"{prefix}.{key}", f"{LOCAL_REASON}, where no container runtime enforces it; use a cluster"
    for i, item in enumerate(settings.get("env") or []):
        source = item.get("valueFrom") or {}
        if source and set(source) != {"secretKeyRef"}:
            yield (f"{prefix}.env[{i}].valueFrom",
                   f"{LOCAL_REASON}: only value and valueFrom.secretKeyRef are resolved here")


def _local(obj: dict, identity: Identity | None = None) -> Iterator[tuple[str, str]]:
    yield from _pitr(obj, "local")
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Function":
        yield from _container_settings(spec.get("runtimeSettings") or {}, "spec.runtimeSettings", identity)
        return
    if kind not in HOOK_KINDS:
        return
    temp = spec.get("tempDir") or {}
    for key in ("medium", "sizeLimit"):
        if temp.get(key):
            yield (f"spec.tempDir.{key}", f"{LOCAL_REASON}: there is no emptyDir to size or keep in memory; "
                   "temporary files go to this machine's temporary directory")
    if spec.get("interimVolumeTemplate"):
        yield ("spec.interimVolumeTemplate", f"{LOCAL_REASON}: there is no PersistentVolumeClaim to stage data in "
               "(the built-in addons stream without one)")
    runtime = spec.get("runtimeSettings") or {}
    yield from _container_settings(runtime.get("container") or {}, "spec.runtimeSettings.container", identity)
    for key, value in (runtime.get("pod") or {}).items():
        if key == "securityContext" and value:
            yield from _security(value, "spec.runtimeSettings.pod.securityContext", identity)
        elif value is not None and key not in LOCAL_POD_FIELDS:
            yield (f"spec.runtimeSettings.pod.{key}",
                   f"{LOCAL_REASON}, with no scheduler or kubelet to act on it; use a cluster")


def _check(obj: dict, mode: str, identity: Identity | None) -> Iterator[tuple[str, str]]:
    return _local(obj, identity) if mode == "local" else _kube(obj)


def mode_problems(objs: Sequence[dict[str, Any]], mode: str, identity: Identity | None = None) -> list[str]:
    """One line per field the `mode` ("local" or "kube") cannot honour: "<Kind>/<ns>/<name>: <field>: <why>".
    `identity`: the (uid, gid) local Jobs are started by (None: unknown, so no change of user is possible)."""
    return [f"{_label(obj)}: {path}: {why}" for obj in objs for path, why in _check(obj, mode, identity)]


def split_by_mode(objs: Sequence[dict[str, Any]], mode: str,
                  identity: Identity | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(the objects the `mode` can honour, one line per field of the others): an object with such a field is left
    out whole, never applied with the field ignored. `identity` as for `mode_problems`."""
    kept: list[dict[str, Any]] = []
    lines: list[str] = []
    for obj in objs:
        found = [f"{_label(obj)}: {path}: {why}" for path, why in _check(obj, mode, identity)]
        if found:
            lines += found
        else:
            kept.append(obj)
    return kept, lines
