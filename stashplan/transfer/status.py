"""The statuses and Events a transfer writes, in Stash's shape: host stats, target, session and
Repository status. Pure builders; Events are written with `stashplan.apply.events.emit_event`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stashplan.objects import parse_time, rfc3339, set_condition
from stashplan.pitr import continuity
from stashplan.pitr.continuity import Continuity
from stashplan.repository import Snapshot
from stashplan.units import go_duration, human_size, whole_seconds

EVENT_SOURCE = "stashplan-transfer"


@dataclass(frozen=True)
class HostOutcome:
    """What happened on one host: the snapshot(s) made or restored, or the error."""

    hostname: str
    ok: bool
    duration: float
    error: str = ""
    snapshot: Snapshot | None = None

    def stats(self, *, with_snapshots: bool = True) -> dict:
        out: dict = {
            "hostname": self.hostname,
            "phase": "Succeeded" if self.ok else "Failed",
            "duration": go_duration(self.duration),
        }
        if self.error:
            out["error"] = self.error
        if with_snapshots and self.snapshot is not None:
            snap = self.snapshot
            processing = (snap.end_time - snap.time).total_seconds()
            out["snapshots"] = [
                {
                    "name": snap.short_id,
                    "path": "/" + snap.filename,
                    "totalSize": human_size(snap.total_size, 3),
                    "uploaded": human_size(snap.added_size, 3),
                    "processingTime": go_duration(processing),
                    "fileStats": {"totalFiles": 1},
                }
            ]
        return out


def session_duration(session: dict, now: datetime) -> dict:
    """`sessionDuration` from the session's creation to `now` (empty when it has no creationTimestamp)."""
    start = parse_time((session.get("metadata") or {}).get("creationTimestamp"))
    return {"sessionDuration": whole_seconds(now - start)} if start else {}


def backup_session_status(
    session: dict,
    config: dict,
    host: HostOutcome,
    conditions: list[dict],
    phase: str,
    now: datetime,
    target_conditions: list[dict] | None = None,
) -> dict:
    """The BackupSession status keys the transfer owns: targets[0], conditions, phase, sessionDuration.
    As Stash, the target is Failed when its host failed or a hook condition (target level) is False."""
    status = session.get("status") or {}
    old_targets = [dict(t) for t in status.get("targets") or []]
    first = old_targets[0] if old_targets else {}
    hook_failed = any(c.get("status") == "False" for c in target_conditions or [])
    target = {
        **first,
        "ref": first.get("ref") or ((config.get("spec") or {}).get("target") or {}).get("ref", {}),
        "totalHosts": 1,
        "phase": "Succeeded" if host.ok and not hook_failed else "Failed",
        "stats": [host.stats()],
    }
    if target_conditions:
        target["conditions"] = target_conditions
    return {
        "targets": [target, *old_targets[1:]],
        "conditions": conditions,
        "phase": phase,
        **session_duration(session, now),
    }


def restore_session_status(
    session: dict, host: HostOutcome, conditions: list[dict], now: datetime, phase: str = ""
) -> dict:
    return {
        "phase": phase or ("Succeeded" if host.ok else "Failed"),
        "totalHosts": 1,
        "stats": [host.stats(with_snapshots=False)],
        "conditions": conditions,
        **session_duration(session, now),
    }


def repository_status(
    repository: dict,
    *,
    total_size: int,
    snapshot_count: int,
    integrity: bool | None,
    removed: int,
    backup_time: datetime,
    pitr: Continuity | None = None,
) -> dict:
    """Stash's Repository status keys; after a base backup also `pitr` (the recoverable window, gaps) and the
    `WALContinuous` condition."""
    old = repository.get("status") or {}
    out: dict = {
        "totalSize": human_size(total_size, 3),
        "snapshotCount": snapshot_count,
        "firstBackupTime": old.get("firstBackupTime") or rfc3339(backup_time),
        "lastBackupTime": rfc3339(backup_time),
        "snapshotsRemovedOnLastCleanup": removed,
    }
    if integrity is not None:
        out["integrity"] = integrity
    if pitr is not None:
        ok, reason, message = continuity.condition(pitr)
        out["pitr"] = continuity.status(pitr)
        out["conditions"] = set_condition(old.get("conditions"), continuity.CONDITION, ok, reason, message, backup_time)
    return out


def with_condition(
    conditions: list[dict], type_: str, ok: bool, reason: str, message: str, now: datetime
) -> list[dict]:
    return set_condition(conditions, type_, ok, reason, message, now)
