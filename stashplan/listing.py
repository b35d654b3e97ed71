"""`stashplan get` tables: kind name resolution and Stash's printer columns. Pure -> rich Table."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table

from stashplan.kinds import KINDS
from stashplan.objects import parse_time

_ALIASES = {"bc": "BackupConfiguration", "repo": "Repository", "restore": "RestoreSession", "fn": "Function",
            "cj": "CronJob", "deploy": "Deployment"}


def canonical_kind(text: str) -> str:
    """"backupsessions", "BackupSession", "bc" -> "BackupSession"; a clear error otherwise."""
    low = text.lower()
    if low in _ALIASES:
        return _ALIASES[low]
    for info in KINDS.values():
        if low in (info.kind.lower(), info.plural, info.kind.lower() + "s"):
            return info.kind
    raise ValueError(f"unknown kind {text!r}; known: {', '.join(sorted(KINDS))}")


def _age(obj: dict, now: datetime) -> str:
    created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    if created is None:
        return ""
    secs = int((now - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


FAILURE_CONDITIONS = ("DeadlineExceeded", "BackupDisrupted", "BackupSkipped")


def session_reason(session: dict) -> str:
    return " ".join(_session_reason(session).split())


def _session_reason(session: dict) -> str:
    """Why a session is where it is, in one line: the transfer's error, else the failing condition's message
    (a True DeadlineExceeded/BackupDisrupted/BackupSkipped, else the latest False condition); "" if none."""
    status = session.get("status") or {}
    stats = [st for t in status.get("targets") or [] for st in t.get("stats") or []] + list(status.get("stats") or [])
    errors = [str(st["error"]) for st in stats if st.get("error")]
    if errors:
        return errors[0]
    conds = sorted(status.get("conditions") or [], key=lambda c: str(c.get("lastTransitionTime", "")), reverse=True)
    for cond in conds:
        if cond.get("type") in FAILURE_CONDITIONS and str(cond.get("status")) == "True":
            return str(cond.get("message") or cond.get("reason") or "")
    if status.get("phase") in ("Failed", "Invalid"):
        for cond in conds:
            if str(cond.get("status")) == "False":
                return str(cond.get("message") or cond.get("reason") or "")
    return ""


def _columns(kind: str, obj: dict) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "BackupConfiguration":
        return [(spec.get("task") or {}).get("name", ""), spec.get("schedule", ""),
                str(bool(spec.get("paused", False))).lower(), status.get("phase", "")]
    if kind == "BackupSession":
        inv = spec.get("invoker") or {}
        return [inv.get("kind", ""), inv.get("name", ""), status.get("phase", ""), status.get("sessionDuration", ""),
                _cut(session_reason(obj))]
    if kind == "RestoreSession":
        return [(spec.get("repository") or {}).get("name", ""), status.get("phase", ""), status.get("sessionDuration", ""),
                _cut(session_reason(obj))]
    if kind == "Repository":
        integrity = status.get("integrity")
        return ["" if integrity is None else str(integrity).lower(), str(status.get("totalSize", "")),
                str(status.get("snapshotCount", "")), status.get("lastBackupTime", "")]
    if kind == "CronJob":
        return [spec.get("schedule", ""), str(bool(spec.get("suspend"))).lower(), status.get("lastScheduleTime", "")]
    if kind == "Deployment":
        available: dict = next((c for c in status.get("conditions") or [] if c.get("type") == "Available"), {})
        return [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", available.get("reason", ""),
                _cut(str(available.get("message", "")))]
    if kind == "Job":
        state = "Complete" if status.get("succeeded") else "Failed" if status.get("failed") else (
            "Running" if status.get("active") else "Pending")
        return [state]
    return []


_HEADERS = {
    "BackupConfiguration": ["TASK", "SCHEDULE", "PAUSED", "PHASE"],
    "BackupSession": ["INVOKER-TYPE", "INVOKER-NAME", "PHASE", "DURATION", "REASON"],
    "RestoreSession": ["REPOSITORY", "PHASE", "DURATION", "REASON"],
    "Repository": ["INTEGRITY", "SIZE", "SNAPSHOT-COUNT", "LAST-SUCCESSFUL-BACKUP"],
    "CronJob": ["SCHEDULE", "SUSPEND", "LAST-SCHEDULE"],
    "Job": ["STATUS"],
    "Deployment": ["READY", "REASON", "MESSAGE"],
}


def _cut(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def table(kind: str, objs: list[dict], now: datetime) -> Table:
    namespaced = KINDS[kind].namespaced
    t = Table(box=None, pad_edge=False, header_style="bold")
    headers = (["NAMESPACE"] if namespaced else []) + ["NAME", *_HEADERS.get(kind, []), "AGE"]
    for h in headers:
        t.add_column(h, no_wrap=True)
    for obj in objs:
        meta = obj.get("metadata") or {}
        row = ([meta.get("namespace", "")] if namespaced else []) + [meta.get("name", "")]
        t.add_row(*row, *_columns(kind, obj), _age(obj, now))
    return t
