"""Post-backup actions of a transfer, each recorded as a session condition and never raised:
retention (`forget` + prune, of this invoker's snapshots only), the integrity check, Repository status,
and metrics pushes.

Maintenance shares the repository with other sessions: it waits up to MAINTENANCE_LOCK_WAIT for their
locks. If they still hold it, the snapshot stays stored and the session is not failed: the condition
is set to Unknown (reason ...Deferred) and the next session applies retention or checks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry

from stashplan import metrics
from stashplan.cluster.base import Cluster
from stashplan.errors import StashplanError
from stashplan.repository import InvokerRef, LockedError, Repository, TargetRef
from stashplan.transfer.context import SessionContext
from stashplan.transfer.status import repository_status, with_condition

log = logging.getLogger(__name__)
MAINTENANCE_LOCK_WAIT = 300.0  # seconds retention and check wait for other sessions' locks


def deferred(conds: list[dict], type_: str, reason: str, exc: LockedError, now: datetime) -> list[dict]:
    """Condition `type_` with status Unknown: maintenance did not run because another session held
    the repository; it is not a failure of this session."""
    out = with_condition(conds, type_, False, reason, f"deferred to the next session: {exc}", now)
    return [{**c, "status": "Unknown"} if c.get("type") == type_ else c for c in out]


def invoker_ref(ctx: SessionContext) -> InvokerRef:
    """The invoker a backup's snapshot records and its retention is limited to."""
    return InvokerRef(str(ctx.invoker["kind"]), ctx.namespace, str(ctx.invoker["metadata"]["name"]))


def target_ref(ctx: SessionContext) -> TargetRef:
    """The AppBinding a snapshot is dumped from, or restored into."""
    meta = ctx.appbinding["metadata"]
    return TargetRef(str(meta.get("namespace") or ctx.namespace), str(meta["name"]))


def describe(exc: BaseException) -> str:
    """One line for a user: our own errors as they are, anything else with its type."""
    if isinstance(exc, StashplanError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def push_metrics(
    url: str,
    job: str,
    registry: CollectorRegistry,
    conds: list[dict],
    type_: str,
    ok_reason: str,
    bad_reason: str,
    now: datetime,
) -> list[dict]:
    """Push `registry` and set condition `type_`; no URL means metrics are off and nothing is set."""
    if not url:
        return conds
    try:
        metrics.push(url, job, registry)
    except metrics.MetricsPushError as exc:
        log.warning("%s", exc)
        return with_condition(conds, type_, False, bad_reason, str(exc), now)
    return with_condition(conds, type_, True, ok_reason, f"pushed to {metrics.redact(url)}", now)


def after_backup(
    cluster: Cluster, ctx: SessionContext, repo: Repository, conds: list[dict], clock: Callable[[], datetime]
) -> tuple[list[dict], metrics.RepositoryState]:
    """Retention, integrity check, stats, Repository status; each sets its condition and never raises."""
    removed = 0
    repo.lock_wait = MAINTENANCE_LOCK_WAIT
    if ctx.retention is not None:
        try:
            res = repo.forget(
                ctx.retention.policy,
                dry_run=ctx.retention.dry_run,
                prune=ctx.retention.prune,
                invoker=invoker_ref(ctx),
            )
            removed = 0 if ctx.retention.dry_run else len(res.remove)
            verb = "would remove" if ctx.retention.dry_run else "removed"
            conds = with_condition(
                conds,
                "RetentionPolicyApplied",
                True,
                "SuccessfullyAppliedRetentionPolicy",
                f"kept {len(res.keep)}, {verb} {len(res.remove)} snapshot(s)"
                + (" and pruned" if ctx.retention.prune and removed else ""),
                clock(),
            )
        except LockedError as exc:
            conds = deferred(conds, "RetentionPolicyApplied", "RetentionPolicyDeferred", exc, clock())
        except Exception as exc:
            conds = with_condition(
                conds,
                "RetentionPolicyApplied",
                False,
                "FailedToApplyRetentionPolicy",
                describe(exc),
                clock(),
            )
    integrity: bool | None = None
    try:
        check = repo.check()
        integrity = check.ok
        conds = with_condition(
            conds,
            "RepositoryIntegrityVerified",
            check.ok,
            "SuccessfullyVerifiedRepositoryIntegrity" if check.ok else "FailedToVerifyRepositoryIntegrity",
            "repository check passed" if check.ok else "; ".join(check.errors[:3]),
            clock(),
        )
    except LockedError as exc:
        conds = deferred(conds, "RepositoryIntegrityVerified", "IntegrityCheckDeferred", exc, clock())
    except Exception as exc:
        integrity = False
        conds = with_condition(
            conds,
            "RepositoryIntegrityVerified",
            False,
            "FailedToVerifyRepositoryIntegrity",
            describe(exc),
            clock(),
        )
    meta = ctx.repository["metadata"]
    backend = (ctx.repository.get("spec") or {}).get("backend") or {}
    kind = next((k for k in ("s3", "local", "gcs", "azure", "swift", "b2", "rest") if k in backend), "")
    total, count = 0, 0
    try:
        stats = repo.stats()
        total, count = stats.total_size, stats.snapshot_count
        status = repository_status(
            ctx.repository,
            total_size=total,
            snapshot_count=count,
            integrity=integrity,
            removed=removed,
            backup_time=clock(),
        )
        cluster.patch_status("Repository", ctx.repo_namespace, meta["name"], status)
    except Exception as exc:
        log.warning("could not update Repository %s/%s status: %s", ctx.repo_namespace, meta["name"], exc)
    state = metrics.RepositoryState(
        meta["name"],
        ctx.repo_namespace,
        kind,
        bool(integrity),
        total,
        count,
        removed,
        str((backend.get(kind) or {}).get("bucket") or ""),
        str((backend.get(kind) or {}).get("prefix") or ""),
    )
    return conds, state
