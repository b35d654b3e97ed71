"""Fields that one way of running cannot honour, refused at plan time with one line each: in local mode
(Jobs run as processes on this machine) what only a kubelet or scheduler can act on; in kube mode what
needs the database's own pod. Pure: validated manifests in, problem lines out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

LOCAL_REASON = "local mode runs the Job as a process on this machine"
LOCAL_POD_FIELDS = ("serviceAccountName", "podLabels", "podAnnotations")  # kept on the stored Job as given
LOCAL_CONTAINER_REFUSED = ("resources", "securityContext", "livenessProbe", "readinessProbe", "lifecycle", "envFrom")
HOOK_KINDS = {"BackupConfiguration": ("preBackup", "postBackup"), "RestoreSession": ("preRestore", "postRestore")}


def _label(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{where}{meta.get('name', '?')}"


def _kube(obj: dict) -> Iterator[tuple[str, str]]:
    hooks = (obj.get("spec") or {}).get("hooks") or {}
    for hook_type in HOOK_KINDS.get(str(obj.get("kind")), ()):
        if (hooks.get(hook_type) or {}).get("containerName"):
            yield (f"spec.hooks.{hook_type}.containerName",
                   "stashplan runs hooks in the backup or restore Job's own container, not in a container of "
                   "the database's pod; remove containerName (the command then runs in the Job)")


def _container_settings(settings: dict, prefix: str) -> Iterator[tuple[str, str]]:
    for key in LOCAL_CONTAINER_REFUSED:
        if settings.get(key):
            yield f"{prefix}.{key}", f"{LOCAL_REASON}, where no container runtime enforces it; use a cluster"
    for i, item in enumerate(settings.get("env") or []):
        source = item.get("valueFrom") or {}
        if source and set(source) != {"secretKeyRef"}:
            yield (f"{prefix}.env[{i}].valueFrom",
                   f"{LOCAL_REASON}: only value and valueFrom.secretKeyRef are resolved here")


def _local(obj: dict) -> Iterator[tuple[str, str]]:
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Function":
        yield from _container_settings(spec.get("runtimeSettings") or {}, "spec.runtimeSettings")
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
    yield from _container_settings(runtime.get("container") or {}, "spec.runtimeSettings.container")
    for key, value in (runtime.get("pod") or {}).items():
        if value is not None and key not in LOCAL_POD_FIELDS:
            yield (f"spec.runtimeSettings.pod.{key}",
                   f"{LOCAL_REASON}, with no scheduler or kubelet to act on it; use a cluster")


def mode_problems(objs: Sequence[dict[str, Any]], mode: str) -> list[str]:
    """One line per field the `mode` ("local" or "kube") cannot honour: "<Kind>/<ns>/<name>: <field>: <why>"."""
    check = _local if mode == "local" else _kube
    return [f"{_label(obj)}: {path}: {why}" for obj in objs for path, why in check(obj)]


def split_by_mode(objs: Sequence[dict[str, Any]], mode: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(the objects the `mode` can honour, one line per field of the others): an object with such a field is left
    out whole, never applied with the field ignored."""
    check = _local if mode == "local" else _kube
    kept: list[dict[str, Any]] = []
    lines: list[str] = []
    for obj in objs:
        found = [f"{_label(obj)}: {path}: {why}" for path, why in check(obj)]
        if found:
            lines += found
        else:
            kept.append(obj)
    return kept, lines
