"""Small pure helpers on Kubernetes-shaped dicts: names, owner references, conditions, durations, times."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from stashplan.kinds import MANAGED_LABEL, MANAGED_VALUE
from stashplan.units import parse_go_duration


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (dicts, lists, scalars): several times faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {k: json_copy(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) if isinstance(v, dict | list) else v for v in value]
    return value


def k8s_name(prefix: str, name: str, limit: int = 63) -> str:
    """`prefix + name`, dots to dashes, shortened with a stable hash suffix when over `limit`."""
    full = (prefix + name).replace(".", "-").lower()
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return full[: limit - 9].rstrip("-") + "-" + digest


def owner_ref(obj: dict) -> dict:
    meta = obj["metadata"]
    ref = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    if meta.get("uid"):
        ref["uid"] = meta["uid"]
    return ref


def is_managed(obj: dict) -> bool:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_LABEL) == MANAGED_VALUE


def parse_duration(value: str | int | float | None) -> timedelta | None:
    """Go/metav1 durations ("1h30m", "45s") or plain seconds; None or "" gives None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or str(value).strip().isdigit():
        return timedelta(seconds=float(value))
    return parse_go_duration(str(value))


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def condition(conditions: list[dict] | None, type_: str) -> dict | None:
    for c in conditions or []:
        if c.get("type") == type_:
            return c
    return None


def set_condition(
    conditions: list[dict] | None, type_: str, ok: bool, reason: str, message: str, now: datetime
) -> list[dict]:
    """A new condition list with `type_` set; lastTransitionTime kept unless the status changes."""
    status = "True" if ok else "False"
    out = [dict(c) for c in conditions or [] if c.get("type") != type_]
    old = condition(conditions, type_)
    when = old["lastTransitionTime"] if old and old.get("status") == status and old.get(
        "lastTransitionTime") else rfc3339(now)
    out.append({"type": type_, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": when})
    return out
