"""What the operator's /metrics says about the objects one loop iteration read: per BackupConfiguration its
schedule's longest gap, paused flag and creation time, and whether its WAL receiver should be running; the
deadline of each Running session; objects counted by kind and phase. Pure: objects in, values out (the health
server exports them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stashplan.desired.pods import COMPONENT, RECEIVER_ROLE
from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE, MANAGED_LABEL, MANAGED_VALUE
from stashplan.objects import parse_time
from stashplan.schedules import longest_gap

SESSION_KINDS = ("BackupSession", "RestoreSession")
# Phase of an object whose status has none yet: a session is Pending (as the planner reads it); a configuration
# the loop has not validated yet is Unknown.
NO_SESSION_PHASE, NO_CONFIG_PHASE = "Pending", "Unknown"


@dataclass(frozen=True)
class ConfigValues:
    """The gauges of one BackupConfiguration (labels namespace, invoker_kind, invoker_name)."""

    namespace: str
    name: str
    paused: bool
    created: float | None  # Unix time of metadata.creationTimestamp
    interval: float | None  # seconds: the longest gap between two runs of spec.schedule (None if invalid)


@dataclass(frozen=True)
class SessionDeadline:
    namespace: str
    invoker_kind: str
    invoker_name: str
    session: str
    deadline: float  # Unix time: start + timeOut


@dataclass(frozen=True)
class Observed:
    """Everything the iteration's objects say, for the /metrics gauges; replaced as a whole each iteration."""

    configs: tuple[ConfigValues, ...] = ()
    deadlines: tuple[SessionDeadline, ...] = ()
    objects: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (kind, phase) -> count
    receivers: tuple[tuple[str, str], ...] = ()  # (namespace, BackupConfiguration) whose WAL receiver should run


def _timestamp(value: str | None) -> float | None:
    t = parse_time(value)
    return t.timestamp() if t else None


def _config(obj: dict) -> ConfigValues:
    meta, spec = obj["metadata"], obj.get("spec") or {}
    schedule = spec.get("schedule")
    return ConfigValues(
        meta.get("namespace", ""), meta["name"], bool(spec.get("paused")), _timestamp(meta.get("creationTimestamp")),
        longest_gap(str(schedule)) if schedule else None,
    )


def _deadline(obj: dict) -> SessionDeadline | None:
    """A Running session's deadline (its status.sessionDeadline, set from timeOut when it started), or None."""
    status = obj.get("status") or {}
    deadline = _timestamp(status.get("sessionDeadline"))
    if status.get("phase") != "Running" or deadline is None:
        return None
    meta = obj["metadata"]
    if obj.get("kind") == "BackupSession":
        invoker_kind = "BackupConfiguration"
        invoker_name = str(((obj.get("spec") or {}).get("invoker") or {}).get("name") or "")
    else:
        invoker_kind, invoker_name = str(obj.get("kind") or "RestoreSession"), meta["name"]
    return SessionDeadline(meta.get("namespace", ""), invoker_kind, invoker_name, meta["name"], deadline)


RECEIVER_LABELS = {MANAGED_LABEL: MANAGED_VALUE, COMPONENT: RECEIVER_ROLE}  # what the loop lists Deployments by


def _receivers(configs: list[dict], deployments: Iterable[dict]) -> tuple[tuple[str, str], ...]:
    """(namespace, configuration) of each stashplan WAL receiver Deployment that asks for a replica (a paused
    configuration's has none) and belongs to one of `configs` (another operator's scope reports its own)."""
    known = {(c["metadata"].get("namespace", ""), c["metadata"]["name"]) for c in configs}
    found = set()
    for d in deployments:
        labels = (d.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in RECEIVER_LABELS.items()) or labels.get(INVOKER_TYPE) != \
                "BackupConfiguration":
            continue
        replicas = (d.get("spec") or {}).get("replicas", 1)
        key = (str(d["metadata"].get("namespace", "")), str(labels.get(INVOKER_NAME, "")))
        if isinstance(replicas, int) and replicas > 0 and key in known:
            found.add(key)
    return tuple(sorted(found))


def observe(configs: Iterable[dict], sessions: Iterable[dict], deployments: Iterable[dict] = ()) -> Observed:
    """The gauge values of BackupConfigurations, of sessions (BackupSession and RestoreSession objects) and of
    the configurations' WAL receiver Deployments."""
    configs, sessions = list(configs), [s for s in sessions if s.get("kind") in SESSION_KINDS]
    counts: Counter[tuple[str, str]] = Counter(
        ("BackupConfiguration", str((c.get("status") or {}).get("phase") or NO_CONFIG_PHASE)) for c in configs)
    counts.update((str(s["kind"]), str((s.get("status") or {}).get("phase") or NO_SESSION_PHASE)) for s in sessions)
    deadlines = (_deadline(s) for s in sessions)
    return Observed(tuple(_config(c) for c in configs), tuple(d for d in deadlines if d is not None), dict(counts),
                    _receivers(configs, deployments))
