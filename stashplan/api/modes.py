"""Fields that one way of running cannot honour, refused at plan time with one line each: in local mode
(Jobs run as processes on this machine) what only a kubelet or scheduler can act on; in kube mode what
needs the database's own pod. Pure: validated manifests in, problem lines out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

LOCAL_REASON = "local mode runs the Job as a process on this machine"
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


def _local(obj: dict) -> Iterator[tuple[str, str]]:
    return iter(())


def mode_problems(objs: Sequence[dict[str, Any]], mode: str) -> list[str]:
    """One line per field the `mode` ("local" or "kube") cannot honour: "<Kind>/<ns>/<name>: <field>: <why>"."""
    check = _local if mode == "local" else _kube
    return [f"{_label(obj)}: {path}: {why}" for obj in objs for path, why in check(obj)]
