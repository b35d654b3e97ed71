"""`stashplan describe <kind> <name>`, as `kubectl describe` shows an object: identity, phase and reason,
conditions, the session's Job with the tail of its log, and the Events about it. Pure -> text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import yaml

from stashplan.desired.pods import job_name
from stashplan.listing import session_reason
from stashplan.objects import parse_time
from stashplan.secrets import mask

SESSION_JOB_PREFIX = {"BackupSession": "stash-backup-", "RestoreSession": "stash-restore-"}


@dataclass(frozen=True)
class Described:
    """What `describe` shows of one object; the CLI gathers it from the cluster (and the Job's log file)."""

    obj: dict
    events: Sequence[dict] = ()
    job: dict | None = None
    job_log: Sequence[str] = field(default_factory=tuple)
    job_log_source: str = ""


def job_name_for(kind: str, name: str) -> str | None:
    """The Job a session runs in (None for other kinds)."""
    return job_name(kind, name) if kind in SESSION_JOB_PREFIX else None


def _age(stamp: str | None, now: datetime) -> str:
    when = parse_time(stamp)
    if when is None:
        return "<unknown>"
    secs = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _rows(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def render(d: Described, now: datetime) -> str:
    obj = mask(d.obj) or d.obj
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    kind = str(obj.get("kind", ""))
    out = [f"Name:         {meta.get('name', '')}"]
    if meta.get("namespace"):
        out.append(f"Namespace:    {meta['namespace']}")
    out.append(f"Kind:         {kind}")
    labels = meta.get("labels") or {}
    out.append("Labels:       " + ("\n              ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"))
    out.append(f"Created:      {meta.get('creationTimestamp', '<unknown>')} ({_age(meta.get('creationTimestamp'), now)} ago)")
    if status.get("phase"):
        out.append(f"Phase:        {status['phase']}")
    if kind in SESSION_JOB_PREFIX:
        out.append(f"Reason:       {session_reason(obj) or '<none>'}")
        if status.get("sessionDuration"):
            out.append(f"Duration:     {status['sessionDuration']}")
    spec = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    if spec:
        out.append("Spec:")
        out += ["  " + line for line in yaml.safe_dump(spec, sort_keys=False).rstrip().splitlines()]
    conds = status.get("conditions") or []
    out.append("Conditions:" if conds else "Conditions:   <none>")
    if conds:
        out += _rows([["TYPE", "STATUS", "REASON", "MESSAGE"]]
                     + [[str(c.get("type", "")), str(c.get("status", "")), str(c.get("reason", "")),
                         " ".join(str(c.get("message", "")).split())] for c in conds])
    if kind in SESSION_JOB_PREFIX:
        out += _job_lines(d)
    out.append("Events:" if d.events else "Events:       <none>")
    if d.events:
        events = sorted(d.events, key=lambda e: (str(e.get("lastTimestamp", "")), int(
            (e.get("metadata") or {}).get("resourceVersion") or 0)))
        out += _rows([["TYPE", "REASON", "AGE", "FROM", "MESSAGE"]]
                     + [[str(e.get("type", "")), str(e.get("reason", "")), _age(e.get("lastTimestamp"), now),
                         str((e.get("source") or {}).get("component", "")), " ".join(str(e.get("message", "")).split())]
                        for e in events])
    return "\n".join(out) + "\n"


def _job_lines(d: Described) -> list[str]:
    if d.job is None:
        return ["Job:          <none>"]
    st = d.job.get("status") or {}
    state = "Complete" if st.get("succeeded") else "Failed" if st.get("failed") else (
        "Running" if st.get("active") else "Pending")
    out = [f"Job:          {d.job['metadata']['name']} ({state})"]
    if d.job_log:
        out.append(f"Job log (last {len(d.job_log)} lines of {d.job_log_source}):")
        out += ["  " + line for line in d.job_log]
    else:
        out.append("Job log:      " + (f"<empty> ({d.job_log_source})" if d.job_log_source else
                                       "<not available here: kubectl logs job/" + d.job["metadata"]["name"] + ">"))
    return out
