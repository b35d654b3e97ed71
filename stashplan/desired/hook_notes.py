"""Plan notes about where hooks run (desired state, pure): in local mode an `exec` hook, which Stash runs in the
target's pod, is a command run on this machine by the user running stashplan."""

from __future__ import annotations

from stashplan.desired.world import Settings

HOOK_TYPES = ("preBackup", "postBackup", "preRestore", "postRestore")


def local_exec_hook_notes(kind: str, obj: dict, settings: Settings) -> list[str]:
    """One note per `exec` hook of a BackupConfiguration or RestoreSession in local mode; none in kube mode."""
    if settings.command_available is None:  # kube mode: the hook runs in the Job's container
        return []
    meta = obj.get("metadata") or {}
    hooks = (obj.get("spec") or {}).get("hooks") or {}
    notes = []
    for hook_type in HOOK_TYPES:
        action = (hooks.get(hook_type) or {}).get("exec")
        if action:
            command = [str(a) for a in action.get("command") or []]
            notes.append(f"{kind} {meta.get('namespace', 'default')}/{meta.get('name', '')}: spec.hooks.{hook_type} "
                         f"exec {command[0] if command else ''!r} runs on this machine (local mode), as the user "
                         "running stashplan")
    return notes
