"""Metrics for sessions the loop itself marks Failed (their Job failed or ran out of time before the transfer
could report): `…_success 0` is pushed as Stash's operator does, so alerts on it fire, and for a backup the
time and reason (DeadlineExceeded or JobFailed) of the last failure. I/O: reads the cluster, pushes to the
Pushgateway; every failure is logged, never raised."""

from __future__ import annotations

import logging
import time

from stashplan import metrics
from stashplan.cluster.base import Cluster
from stashplan.errors import NotFound, StashplanError
from stashplan.objects import condition

log = logging.getLogger("stashplan.apply.failure_metrics")


def push_session_failure(cluster: Cluster, kind: str, namespace: str, name: str, url: str) -> None:
    try:
        session = cluster.get(kind, namespace, name)
        if kind == "BackupSession":
            invoker_name = (session["spec"].get("invoker") or {}).get("name", "")
            owner = cluster.get("BackupConfiguration", namespace, invoker_name)
            invoker = metrics.Invoker("BackupConfiguration", invoker_name, namespace,
                                      (owner["spec"].get("repository") or {}).get("name", ""))
        else:
            owner = session
            invoker = metrics.Invoker("RestoreSession", name, namespace,
                                      (session["spec"].get("repository") or {}).get("name", ""))
        target_spec = owner["spec"].get("target") or {}
        ref = target_spec.get("ref") or {}
        try:
            appbinding = cluster.get("AppBinding", ref.get("namespace") or namespace, ref.get("name", ""))
        except NotFound:
            appbinding = {"metadata": {"name": ref.get("name", "")}}
        target = metrics.Target.from_appbinding(appbinding)
        host = metrics.HostResult(target_spec.get("alias") or "host-0", False)
        if kind == "BackupSession":
            registry = metrics.backup_session_registry(invoker, target, host, session_duration=0.0, now=time.time(),
                                                       failure_reason=reason(session))
        else:
            registry = metrics.restore_session_registry(invoker, target, host, session_duration=0.0)
        metrics.push(url, metrics.job_name(invoker.kind, namespace, invoker.name), registry)
    except (StashplanError, KeyError) as exc:
        log.warning("failure metrics of %s %s/%s not pushed: %s", kind, namespace, name, exc)


def reason(session: dict) -> metrics.FailureReason:
    """DeadlineExceeded when the loop failed the session for its deadline, else JobFailed."""
    deadline = condition((session.get("status") or {}).get("conditions"), "DeadlineExceeded")
    if deadline is not None and deadline.get("status") == "True":
        return metrics.FailureReason.DEADLINE_EXCEEDED
    return metrics.FailureReason.JOB_FAILED
