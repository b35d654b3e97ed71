"""Post-backup actions of a transfer, each recorded as a session condition and never raised:
retention (`forget` + prune, of this invoker's snapshots only), the integrity check, Repository status,
and metrics pushes. Before the backup, the rolling read (`read_before_backup`) reads the packs whose turn has
come, so the snapshot reuses only packs read within the window; the condition says what was verified.

Maintenance shares the repository with other sessions: it waits up to MAINTENANCE_LOCK_WAIT for their
locks. If they still hold it, the snapshot stays stored and the session is not failed: the condition
is set to Unknown (reason ...Deferred) and the next session applies retention or checks again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from stashplan import metrics
from stashplan.cluster.base import Cluster
from stashplan.errors import StashplanError
from stashplan.pitr import continuity
from stashplan.pitr.continuity import Continuity
from stashplan.pitr.forget import forget_wal
from stashplan.pitr.inventory import take_inventory
from stashplan.repository import CheckResult, InvokerRef, LockedError, Repository, TargetRef
from stashplan.repository.rolling import DEFAULT_WINDOW, RollingResult
from stashplan.transfer.context import SessionContext
from stashplan.transfer.status import repository_status, with_condition
from stashplan.units import parse_go_duration

log = logging.getLogger(__name__)
MAINTENANCE_LOCK_WAIT = 300.0  # seconds retention and check wait for other sessions' locks
WINDOW_ENV = "STASHPLAN_READ_DATA_WINDOW"  # every pack is read at least once per this window (Go duration)


@dataclass(frozen=True)
class PreRead:
    """The rolling read before a backup: its result, or why it did not run (`deferred`: another session's lock)."""

    result: RollingResult | None
    problem: str = ""
    deferred: bool = False


def read_window(env: Mapping[str, str] = os.environ) -> timedelta:
    """STASHPLAN_READ_DATA_WINDOW (e.g. "168h"), else 7 days; ValueError naming the variable when invalid."""
    value = env.get(WINDOW_ENV, "").strip()
    if not value:
        return DEFAULT_WINDOW
    try:
        window = parse_go_duration(value)
    except ValueError as exc:
        raise ValueError(f"{WINDOW_ENV}: {exc}") from None
    if window <= timedelta(0):
        raise ValueError(f"{WINDOW_ENV}: {value!r} must be longer than 0s")
    return window


def read_before_backup(repo: Repository, clock: Callable[[], datetime]) -> PreRead:
    """The rolling read, never raising: packs found damaged are marked before the backup deduplicates."""
    try:
        return PreRead(repo.read_rolling(clock(), read_window()))
    except LockedError as exc:
        return PreRead(None, str(exc), deferred=True)
    except Exception as exc:
        return PreRead(None, describe(exc))


def _window_text(window: timedelta) -> str:
    days = window / timedelta(days=1)
    if days == int(days):
        return f"{int(days)} day{'s' if days != 1 else ''}"
    return f"{window.total_seconds() / 3600:g} hours"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def integrity_condition(check: CheckResult, pre: PreRead | None) -> tuple[str, str, str]:
    """(status "True", "False" or "Unknown", reason, message) of RepositoryIntegrityVerified: the
    message says what was verified — the structure, and how many packs were read — never more."""
    parts = [f"structure checked ({_count(check.snapshots, 'snapshot')}, {_count(check.packs, 'pack')})"]
    problems = list(check.errors[:3])
    status: str | None = "True" if check.ok else "False"
    if pre is not None and pre.result is not None:
        r = pre.result
        parts.append(
            f"{r.packs_read} of {r.packs_total} packs read before the backup "
            f"(rolling, every pack within {_window_text(r.window)})"
        )
        if r.damaged:
            status = "False"
            problems.insert(
                0,
                f"the rolling read found {_count(len(r.damaged), 'damaged pack')} ({', '.join(p[:12] for p in r.damaged)}), "
                "marked so that this backup stored their data again (`stashplan repo repair packs` salvages them): "
                + "; ".join(r.errors[:2]),
            )
    elif pre is not None:
        problems.insert(0, f"no packs read: the rolling read {'was deferred' if pre.deferred else 'failed'}: {pre.problem}")
        if pre.deferred and check.ok:
            status = None
        else:
            status = "False"
    message = "; ".join(parts)
    if problems:
        message += "; " + "; ".join(problems)
    if status == "True":
        return status, "SuccessfullyVerifiedRepositoryIntegrity", message
    if status is None:
        return "Unknown", "IntegrityCheckDeferred", message
    return status, "FailedToVerifyRepositoryIntegrity", message


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


def wal_continuity(repo: Repository, now: datetime) -> Continuity | None:
    """The PITR archive's continuity after a base backup; None (logged) when it cannot be read."""
    try:
        return continuity.of_inventory(take_inventory(repo), now)
    except Exception as exc:
        log.warning("could not check the WAL archive's continuity: %s", describe(exc))
        return None


def after_backup(
    cluster: Cluster,
    ctx: SessionContext,
    repo: Repository,
    conds: list[dict],
    clock: Callable[[], datetime],
    pre: PreRead | None = None,
    *,
    pitr: bool = False,
) -> tuple[list[dict], metrics.RepositoryState, Continuity | None]:
    """Retention, integrity check (the structure, with what the rolling read `pre` read), stats, Repository
    status; after a base backup (`pitr`) the WAL archive's continuity too (condition WALContinuous); each sets
    its condition and never raises."""
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
            wal = forget_wal(repo) if pitr and not ctx.retention.dry_run else ()
            conds = with_condition(
                conds,
                "RetentionPolicyApplied",
                True,
                "SuccessfullyAppliedRetentionPolicy",
                f"kept {len(res.keep)}, {verb} {len(res.remove)} snapshot(s)"
                + (" and pruned" if ctx.retention.prune and removed else "")
                + (f", deleted {len(wal)} archived WAL file(s) no kept base backup needs" if wal else ""),
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
        verdict, reason, message = integrity_condition(check, pre)
        integrity = None if verdict == "Unknown" else verdict == "True"
        conds = with_condition(conds, "RepositoryIntegrityVerified", verdict == "True", reason, message, clock())
        if verdict == "Unknown":
            conds = [{**c, "status": "Unknown"} if c.get("type") == "RepositoryIntegrityVerified" else c for c in conds]
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
    found = wal_continuity(repo, clock()) if pitr else None
    if found is not None:
        ok, reason, message = continuity.condition(found)
        conds = with_condition(conds, continuity.CONDITION, ok, reason, message, clock())
    meta = ctx.repository["metadata"]
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
            pitr=found,
        )
        cluster.patch_status("Repository", ctx.repo_namespace, meta["name"], status)
    except Exception as exc:
        log.warning("could not update Repository %s/%s status: %s", ctx.repo_namespace, meta["name"], exc)
    return conds, repository_state(ctx, bool(integrity), total, count, removed), found


def metrics_invoker(ctx: SessionContext) -> metrics.Invoker:
    """Who the metrics of `ctx` are labelled and grouped by: the BackupConfiguration (or RestoreSession) and its
    Repository."""
    return metrics.Invoker(
        str(ctx.invoker["kind"]),
        ctx.invoker["metadata"]["name"],
        ctx.namespace,
        ctx.repository["metadata"]["name"],
    )


def repository_state(
    ctx: SessionContext, integrity: bool = False, size: int = 0, snapshots: int = 0, removed: int = 0
) -> metrics.RepositoryState:
    """The Repository of `ctx` as its metrics see it: its name, namespace, backend, bucket and prefix (the labels
    of every repository metric, see metrics.repository_labels) with the values given."""
    backend = (ctx.repository.get("spec") or {}).get("backend") or {}
    kind = next((k for k in ("s3", "local", "gcs", "azure", "swift", "b2", "rest") if k in backend), "")
    return metrics.RepositoryState(
        ctx.repository["metadata"]["name"],
        ctx.repo_namespace,
        kind,
        integrity,
        size,
        snapshots,
        removed,
        str((backend.get(kind) or {}).get("bucket") or ""),
        str((backend.get(kind) or {}).get("prefix") or ""),
    )
