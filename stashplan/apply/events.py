"""Kubernetes Events about the objects stashplan acts on (Stash's reason strings). Recording is best effort."""

from __future__ import annotations

import logging
from datetime import datetime

from stashplan.cluster.base import Cluster
from stashplan.errors import StashplanError
from stashplan.kinds import KINDS
from stashplan.objects import rfc3339

log = logging.getLogger("stashplan.apply.events")


def event_for(obj: dict, *, reason: str, message: str, warning: bool, now: datetime, component: str,
              hostname: str = "") -> dict:
    """A core/v1 Event about `obj` (pure)."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    info = KINDS.get(kind)
    when = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": info.api_version if info else obj.get("apiVersion", ""),
            "kind": kind,
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": component, **({"host": hostname} if hostname else {})},
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
        "reportingComponent": component,
    }


def emit_event(cluster: Cluster, obj: dict, *, reason: str, message: str, warning: bool, now: datetime,
               component: str, hostname: str = "") -> None:
    """Create an Event about `obj`; a failure to record it is logged, never raised."""
    try:
        cluster.create(event_for(obj, reason=reason, message=message, warning=warning, now=now,
                                 component=component, hostname=hostname))
    except (StashplanError, OSError) as exc:
        log.warning("could not record event %r for %s %s: %s", reason, obj.get("kind"),
                    (obj.get("metadata") or {}).get("name"), exc)
