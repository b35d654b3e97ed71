"""Carrying out a Plan against a Cluster: the only module that writes planned changes."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stashplan.apply.events import emit_event
from stashplan.cluster.base import Cluster
from stashplan.errors import Conflict, FieldConflict, LeadershipLost, NotFound, StalePlanError
from stashplan.managed_fields import FIELD_MANAGER
from stashplan.plan.model import Action, Change, Plan, address
from stashplan.plan.saved import secret_digest


@dataclass
class ApplyResult:
    applied: list[Change] = field(default_factory=list)
    skipped: list[tuple[Change, str]] = field(default_factory=list)  # (change, why) — re-planned next time
    # One line per object whose apply met fields another field manager owns (also in `skipped`): not overwritten.
    conflicts: list[str] = field(default_factory=list)


_CONFLICT = "field conflict: "


def _current(cluster: Cluster, change: Change) -> dict | None:
    try:
        return cluster.get(change.kind, change.namespace, change.name)
    except NotFound:
        return None


def check_stale(cluster: Cluster, plan: Plan) -> None:
    """Refuse a saved plan when any object it read has changed (or appeared) since it was made."""
    stale = []
    for change in plan.changes:
        current = _current(cluster, change)
        have = current["metadata"].get("resourceVersion") if current else None
        if change.action is Action.CREATE and current is not None:
            stale.append(f"{change.address} now exists")
        elif change.action is not Action.CREATE and change.resource_version is not None and have != change.resource_version:
            stale.append(f"{change.address} changed (resourceVersion {change.resource_version} -> {have or 'deleted'})")
    if stale:
        raise StalePlanError("the saved plan is stale; run plan again: " + "; ".join(stale))


def _with_owner_uids(cluster: Cluster, obj: dict) -> dict:
    """Fill ownerReferences[].uid for owners created earlier in the same apply."""
    refs = obj["metadata"].get("ownerReferences") or []
    if all(r.get("uid") for r in refs):
        return obj
    obj = copy.deepcopy(obj)
    for ref in obj["metadata"]["ownerReferences"]:
        if not ref.get("uid"):
            owner = cluster.get(ref["kind"], obj["metadata"].get("namespace", ""), ref["name"])
            ref["uid"] = owner["metadata"]["uid"]
    return obj


def _refused_owner(change: Change, conflicted: set[str]) -> str | None:
    """The address of `change`'s object or of its owner when that one's apply was refused, else None."""
    if not conflicted:
        return None
    if change.address in conflicted:
        return change.address
    for ref in ((change.after or {}).get("metadata") or {}).get("ownerReferences") or []:
        owner = address(str(ref.get("kind", "")), change.namespace, str(ref.get("name", "")))
        if owner in conflicted:
            return owner
    return None


def _apply_object(cluster: Cluster, change: Change, obj: dict) -> str:
    """Create or update `obj` by server-side apply as field manager stashplan (what it applied before and no longer
    asks for goes); an object without a name (generateName) is created. Returns why it was not written, or ""."""
    body = _with_owner_uids(cluster, obj)
    if change.action is Action.CREATE and not body["metadata"].get("name"):
        cluster.create(body)
        return ""
    if change.action is Action.UPDATE:
        if _current(cluster, change) is None:
            return "it no longer exists"
        if change.resource_version:  # conditional on what the plan read
            body = {**body, "metadata": {**body["metadata"], "resourceVersion": change.resource_version}}
    try:
        cluster.apply(body, field_manager=FIELD_MANAGER)
    except FieldConflict as exc:
        return _CONFLICT + "; ".join(f'field {path} is managed by "{manager}"' for path, manager in exc.fields) + \
            "; not overwritten"
    except Conflict as exc:
        return str(exc)
    return ""


def apply_plan(
    cluster: Cluster,
    plan: Plan,
    *,
    saved: bool = False,
    secrets: Mapping[str, dict] | None = None,
    digests: Mapping[str, str] | None = None,
    digest_key: bytes | None = None,
    events: bool = True,
    pushgateway_url: str = "",
    may_write: Callable[[], bool] | None = None,
) -> ApplyResult:
    """Apply every change in order. With `saved`, the plan must not be stale and Secrets come from
    `secrets` (address -> manifest), each matching the digest the plan recorded. With `pushgateway_url`,
    sessions this plan fails get their `…_success 0` metrics pushed. With `may_write` (the loop's leadership), it is
    asked before every write: once it says no, nothing more is written (LeadershipLost)."""
    if saved:
        check_stale(cluster, plan)
    result = ApplyResult()
    written: set[str] = set()  # objects this apply changed: their newer resourceVersion is ours
    conflicted: set[str] = set()  # objects whose apply met another field manager's fields
    for change in plan.changes:
        if may_write is not None and not may_write():
            raise LeadershipLost(f"leadership lost: stopped applying after {len(result.applied)} of "
                                 f"{len(plan.changes)} changes")
        obj = change.after
        if change.kind == "Secret" and change.action in (Action.CREATE, Action.UPDATE) and saved:
            obj = (secrets or {}).get(change.address)
            if obj is None or digest_key is None or secret_digest(obj, digest_key) != (digests or {}).get(change.address):
                raise StalePlanError(f"{change.address}: the Secret in the manifests differs from the saved plan; run plan again")
        if (refused := _refused_owner(change, conflicted)) is not None:
            # Planned from what the refused apply would have made (a paused config's CronJob, its status): wait.
            result.skipped.append((change, f"{refused} was not applied (field conflict)"))
            continue
        if change.action in (Action.CREATE, Action.UPDATE):
            assert obj is not None
            outcome = _apply_object(cluster, change, obj)
            if outcome:
                result.skipped.append((change, outcome))
                if outcome.startswith(_CONFLICT):
                    result.conflicts.append(f"{change.address}: {outcome.removeprefix(_CONFLICT)}")
                    conflicted.add(change.address)
                continue
        elif change.action is Action.STATUS:
            assert obj is not None
            # Conditional on what the plan read (unless this apply wrote the object itself just before).
            rv = change.resource_version if change.address not in written else None
            try:
                cluster.patch_status(change.kind, change.namespace, change.name, obj, resource_version=rv)
            except NotFound:
                result.skipped.append((change, "it no longer exists"))
                continue
            except Conflict as exc:
                result.skipped.append((change, f"changed since it was read: {exc}"))
                continue
        elif change.action is Action.DELETE:
            try:
                cluster.delete(change.kind, change.namespace, change.name)
            except NotFound:
                pass
        result.applied.append(change)
        written.add(change.address)
        if events:
            _record(cluster, change)
        if pushgateway_url and _fails_session(change):
            # The metrics client is imported only by an apply that pushes.
            from stashplan.apply.failure_metrics import push_session_failure

            push_session_failure(cluster, change.kind, change.namespace, change.name, pushgateway_url)
    return result


def _fails_session(change: Change) -> bool:
    return (change.action is Action.STATUS and change.kind in ("BackupSession", "RestoreSession")
            and (change.after or {}).get("phase") == "Failed")


# (kind, new phase) -> (reason, warning, component): Stash's event reasons for what the planner decides.
_PHASE_EVENTS = {
    ("BackupSession", "Running"): ("BackupSession Running", False, "BackupSession Controller"),
    ("BackupSession", "Skipped"): ("BackupSession Skipped", False, "BackupSession Controller"),
    ("BackupSession", "Failed"): ("BackupSession Failed", True, "BackupSession Controller"),
    ("RestoreSession", "Running"): ("Restore Job Created", False, "RestoreSession Controller"),
    ("RestoreSession", "Failed"): ("RestoreSession Failed", True, "RestoreSession Controller"),
    ("RestoreSession", "Invalid"): ("Restore Job Creation Failed", True, "RestoreSession Controller"),
}


def _record(cluster: Cluster, change: Change) -> None:
    """An Event on the session whose phase this change moved (best effort)."""
    if change.action is not Action.STATUS or not change.after or "phase" not in change.after:
        return
    found = _PHASE_EVENTS.get((change.kind, change.after["phase"]))
    if found is None:
        return
    reason, warning, component = found
    try:
        obj = cluster.get(change.kind, change.namespace, change.name)
    except NotFound:
        return
    emit_event(cluster, obj, reason=reason, message=change.reason or reason, warning=warning,
               now=datetime.now(UTC), component=component)
