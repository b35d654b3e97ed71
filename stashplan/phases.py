"""Session phases, declared once: which phases are final (a session never leaves them) and the rule that a
final phase never changes, which every Cluster enforces on status writes. Pure leaf."""

from __future__ import annotations

from enum import StrEnum

from stashplan.errors import Conflict


class SessionPhase(StrEnum):
    PENDING = "Pending"
    SKIPPED = "Skipped"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


# A RestoreSession stashplan refuses to run (Stash's RestorePhase "Invalid"; not a BackupSession phase).
INVALID = "Invalid"


SESSION_KINDS = frozenset({"BackupSession", "RestoreSession"})
# Plain strings (a StrEnum member hashes by its name, so it would not be found in a set of values).
FINAL = frozenset(p.value for p in (SessionPhase.SUCCEEDED, SessionPhase.FAILED, SessionPhase.SKIPPED))
# Phases in which nothing more happens to a session: the final ones, and those no Job is ever made for.
SETTLED = FINAL | {INVALID, SessionPhase.UNKNOWN.value}


def refuse_final_phase_change(obj: dict, status: dict) -> None:
    """Raise Conflict when `status` would move a session out of its final phase (an admission rule's job)."""
    if obj.get("kind") not in SESSION_KINDS or "phase" not in status:
        return
    old = (obj.get("status") or {}).get("phase")
    if old in FINAL and status["phase"] != old:
        meta = obj.get("metadata") or {}
        raise Conflict(str(obj.get("kind")), meta.get("namespace", ""), meta.get("name", ""),
                       f"the session is already {old}; a final phase never changes (refused: {status['phase']})")
