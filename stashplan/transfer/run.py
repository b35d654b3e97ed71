"""The Job entry points: `backup` (dump ==pipe==> repository) and `restore` (repository ==pipe==> client),
then statuses, retention, check, Events and metrics. Transfer layer: knows processes, the cluster and
the repository facade; a failure anywhere is recorded as a Failed session, never a snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, cast

from prometheus_client import CollectorRegistry

from providers.databases import TaskParams, get_provider, wait_ready
from providers.databases.base import Connection, DatabaseProvider
from providers.storage import storage_from_repository
from stashplan import metrics
from stashplan.apply.events import emit_event
from stashplan.cluster.base import Cluster
from stashplan.errors import TransferError
from stashplan.pitr import continuity
from stashplan.pitr.continuity import Continuity
from stashplan.repository import Repository, TargetRef
from stashplan.repository.formats import refusal
from stashplan.repository.locks import released_on_sigterm
from stashplan.repository.opening import AnyRepository, open_repository
from stashplan.repository.progress import progress_reporter
from stashplan.transfer import failure
from stashplan.transfer.context import (
    PodInputs,
    SessionContext,
    load_backup,
    load_restore,
    restore_selection,
    seconds_until,
)
from stashplan.transfer.hooks import DEFAULT_TIMEOUT, HookError, Summary, default_host, execute
from stashplan.transfer.masking import MaskingCluster, masked_logs, session_masker
from stashplan.transfer.pg_parallel_restore import ParallelWriter
from stashplan.transfer.physical import PitrOptions, restore_pitr, take_basebackup
from stashplan.transfer.physical import summary as pitr_summary
from stashplan.transfer.pipe import ProcessReader, ProcessWriter
from stashplan.transfer.post import (
    MAINTENANCE_LOCK_WAIT,
    after_backup,
    describe,
    invoker_ref,
    metrics_invoker,
    push_metrics,
    read_before_backup,
    target_ref,
)
from stashplan.transfer.priority import Priority
from stashplan.transfer.status import (
    EVENT_SOURCE,
    HostOutcome,
    backup_session_status,
    restore_session_status,
)
from stashplan.units import go_duration

MULTI_DUMP_DATABASES = ("mysql", "mariadb")
PROGRESS_EVERY = 30.0  # seconds between progress lines in a Job log (Stash: one a minute)
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TransferOptions:
    """The flags of `stashplan transfer backup|restore`; empty strings mean "use the default"."""

    database: str
    backup_cmd: str = ""
    args: str = ""
    multi_dump_args: str = ""  # MySQL/MariaDB: dumps separated by `$args=`, concatenated into one snapshot
    wait_timeout: float = 300.0
    hostname: str = "host-0"
    source_hostname: str = ""
    snapshot: str = ""
    pushgateway_url: str = ""
    progress_every: float = PROGRESS_EVERY  # seconds between progress lines (off a terminal)
    hook_timeout: float = DEFAULT_TIMEOUT  # seconds each hook may take (never beyond the session deadline)
    priority: Priority = field(default_factory=Priority)  # nice/ionice for the dump or restore and the upload (from the Job's env)
    given: PodInputs | None = None  # the Secrets (and a shared Repository) the Job's pod spec gave it
    jobs: int = 1  # restore connections (one database): > 1 loads data (and PostgreSQL builds indexes) in parallel
    basebackup: bool = False  # PostgreSQL: a base backup (pg_basebackup) instead of a dump (postgres-basebackup-<v>)
    pitr: PitrOptions | None = None  # PostgreSQL: write a data directory recovering to spec.pitr (no connection)


@dataclass(frozen=True)
class TransferResult:
    phase: str  # Succeeded | Failed
    host: HostOutcome
    status: dict  # what was written to the session's status
    error: str = ""  # why the session failed, one line (the host's error or a post-backup action's)

    @property
    def ok(self) -> bool:
        return self.phase == "Succeeded"


def _now() -> datetime:
    return datetime.now(UTC)


def _mono_deadline(ctx: SessionContext, now: datetime) -> float | None:
    left = seconds_until(ctx.deadline, now)
    if left is not None and left <= 0:
        raise TransferError(
            f"deadline exceeded: session deadline {ctx.deadline:%Y-%m-%dT%H:%M:%SZ} has passed"
        )
    return None if left is None else time.monotonic() + left


@contextlib.contextmanager
def _prepared(
    ctx: SessionContext, opts: TransferOptions, now: datetime, *, restoring: bool = False
) -> Iterator[tuple[DatabaseProvider, Connection, TaskParams, float | None, AnyRepository]]:
    """Provider connection (ready), parsed params, monotonic deadline and the opened repository."""
    deadline = _mono_deadline(ctx, now)
    provider = get_provider(opts.database)
    with tempfile.TemporaryDirectory(prefix="stashplan-transfer-") as tmp:
        conn = provider.connection(ctx.appbinding, ctx.db_secret, Path(tmp), tls=ctx.client_tls)
        params = replace(TaskParams.parse(opts.backup_cmd, opts.args, opts.multi_dump_args), jobs=opts.jobs)
        if params.multi_dump_args and provider.name not in MULTI_DUMP_DATABASES:
            raise TransferError(f"multiDumpArgs is supported for {' and '.join(MULTI_DUMP_DATABASES)} only")
        wait = opts.wait_timeout if deadline is None else min(opts.wait_timeout, deadline - time.monotonic())
        wait_ready(
            provider.probe(conn, params, restore=restoring),
            wait,
            what=f"{provider.name} at {conn.host or conn.path}",
        )
        storage = storage_from_repository(ctx.repository, ctx.storage_secret)
        # A backup initialises a new repository (Stash's InitializeBackendRepository); a restore never does,
        # and reads Stash's own restic repositories too.
        repo: AnyRepository = (
            open_repository(storage, ctx.password)
            if restoring
            else Repository.open_or_init(storage, ctx.password)
        )
        if isinstance(repo, Repository):
            repo.lock_wait = MAINTENANCE_LOCK_WAIT  # another session's prune of a shared repository is waited for
        try:
            yield provider, conn, params, deadline, repo
        finally:
            repo.close()


def _summary(ctx: SessionContext, retry_left: int = 0) -> Summary:
    """The session summary hooks are rendered with, while the target is Running."""
    ref = (ctx.invoker.get("spec") or {}).get("target", {}).get("ref") or {}
    return Summary(
        name=ctx.name,
        namespace=ctx.namespace,
        invoker={"APIGroup": "stash.appscode.com", "Kind": str(ctx.invoker["kind"]),
                 "Name": str(ctx.invoker["metadata"]["name"])},
        target={"APIVersion": str(ref.get("apiVersion") or "appcatalog.appscode.com/v1alpha1"),
                "Kind": str(ref.get("kind") or "AppBinding"), "Name": str(ref.get("name") or ""),
                "Namespace": str(ref.get("namespace") or ctx.namespace)},
        phase="Running",
        retry_left=retry_left,
    )


@dataclass
class _Hooks:
    """A session's hooks and where they stand: run them in order, keep their conditions and errors."""

    ctx: SessionContext
    opts: TransferOptions
    clock: Clock
    conditions: list[dict]
    summary: Summary
    errors: list[str]

    def run(self, hook_type: str, outcome: HostOutcome | None = None) -> bool:
        """Run `hook_type` if the invoker has one; False when it failed. Post hooks get the host's outcome."""
        hook = ((self.ctx.invoker.get("spec") or {}).get("hooks") or {}).get(hook_type)
        if outcome is not None:
            self.summary = replace(self.summary, phase="Succeeded" if outcome.ok else "Failed",
                                   duration=go_duration(outcome.duration), error=outcome.error)
        left = seconds_until(self.ctx.deadline, self.clock())
        timeout = self.opts.hook_timeout if left is None else min(self.opts.hook_timeout, left)
        self.conditions, error = execute(hook_type, hook, self.summary, self.conditions, self.clock(),
                                         timeout=timeout, default_host=default_host(self.ctx.appbinding))
        if error:
            self.errors.append(error)
        return not error

    def before(self, hook_type: str) -> None:
        """The pre hook; as in Stash its failure fails the session, and nothing is dumped or restored."""
        if not self.run(hook_type):
            raise HookError(self.errors[-1])

    def after(self, hook_type: str, outcome: HostOutcome) -> list[str]:
        """The post hook with the host's outcome (none after a failed pre hook, as Stash); its errors."""
        if self.errors:
            return []
        self.run(hook_type, outcome)
        return self.errors


def _repository_registry(
    invoker: metrics.Invoker, state: metrics.RepositoryState, pitr: Continuity | None
) -> CollectorRegistry:
    """The repository metrics; after a base backup with the WAL archive's continuity, under the same labels."""
    registry = metrics.repository_registry(invoker, state)
    if pitr is not None:
        continuity.registry(metrics.repository_labels(invoker, state), pitr, registry)
    return registry


def _push_session_metrics(
    url: str, job: str, registry: CollectorRegistry, conds: list[dict], now: datetime
) -> list[dict]:
    """Push a session's metrics to the Pushgateway; the MetricsPushed condition says how it went."""
    return push_metrics(
        url, job, registry, conds, "MetricsPushed", "SuccessfullyPushedMetrics", "FailedToPushMetrics", now
    )


def _event(
    cluster: Cluster, ctx: SessionContext, hostname: str, now: datetime, reason: str, message: str, *, warning: bool
) -> None:
    emit_event(
        cluster,
        ctx.session,
        reason=reason,
        warning=warning,
        now=now,
        hostname=hostname,
        component=EVENT_SOURCE,
        message=message,
    )


def _session_event(
    cluster: Cluster, ctx: SessionContext, hostname: str, now: datetime, kind: str, name: str, phase: str, error: str
) -> None:
    """The session's closing Event: `BackupSession Succeeded`, `RestoreSession Failed: why`, ..."""
    message = f"{kind} {name} {phase.lower()}" + (f": {error}" if error else "")
    _event(cluster, ctx, hostname, now, f"{kind} {phase}", message, warning=phase == "Failed")


# --- backup ---------------------------------------------------------------------------------------


def backup(
    cluster: Cluster, namespace: str, session_name: str, opts: TransferOptions, clock: Clock = _now
) -> TransferResult:
    """Run one BackupSession's transfer and record its outcome; ContextError if the session is unreadable.
    Everything it writes and logs is masked against the session's Secret values."""
    ctx = load_backup(cluster, namespace, session_name, opts.given)
    masker = session_masker(ctx, opts.given)
    with masked_logs(masker):
        result = _backup(MaskingCluster(cluster, masker), ctx, namespace, session_name, opts, clock)
    return replace(result, error=masker(result.error), host=replace(result.host, error=masker(result.host.error)))


def _backup(cluster: Cluster, ctx: SessionContext, namespace: str, session_name: str, opts: TransferOptions,
            clock: Clock) -> TransferResult:
    started = clock()
    t0 = time.monotonic()
    status_now = ctx.session.get("status") or {}
    conds = list(status_now.get("conditions") or [])
    first_target = (status_now.get("targets") or [{}])[0]
    retry_left = int((ctx.session.get("spec") or {}).get("retryLeft") or 0)
    hooks = _Hooks(ctx, opts, clock, list(first_target.get("conditions") or []), _summary(ctx, retry_left), [])
    host = HostOutcome(opts.hostname, False, 0.0)
    repo_state: metrics.RepositoryState | None = None
    pitr: Continuity | None = None
    failed_with: BaseException | None = None
    try:
        hooks.before("preBackup")
        opts.priority.apply()
        with _prepared(ctx, opts, started) as (provider, conn, params, deadline, repo):
            if not isinstance(repo, Repository):
                raise refusal(repo.location, "backup")
            source = f"{provider.name}:{ctx.appbinding['metadata']['name']}"
            pre = read_before_backup(repo, clock)  # packs found damaged now are stored again by this backup
            with progress_reporter(f"backup {namespace}/{session_name}", every=opts.progress_every) as progress:
                if opts.basebackup:
                    snap = take_basebackup(provider, conn, repo, hostname=opts.hostname, source=source,
                                           session_name=session_name, ctx=ctx, deadline=deadline, progress=progress)
                else:
                    with ProcessReader(provider.dump(conn, params), deadline=deadline,
                                       empty_ok=provider.empty_dump_ok) as reader:
                        snap = repo.backup(cast(BinaryIO, reader), hostname=opts.hostname, source=source,
                                           filename=provider.filename, tags=(f"session={session_name}",),
                                           progress=progress, invoker=invoker_ref(ctx), target=target_ref(ctx))
            host = HostOutcome(opts.hostname, True, time.monotonic() - t0, snapshot=snap)
            conds, repo_state, pitr = after_backup(cluster, ctx, repo, conds, clock, pre, pitr=opts.basebackup)
    except Exception as exc:  # every failure becomes a Failed session with one clear line
        failed_with = exc
        host = HostOutcome(opts.hostname, False, time.monotonic() - t0, error=describe(exc))
        log.error("backup of BackupSession %s/%s failed: %s", namespace, session_name, host.error)
    host = replace(host, duration=time.monotonic() - t0)
    post_hook_errors = hooks.after("postBackup", host)
    failed_post = [
        c
        for c in conds
        if c.get("type") in ("RetentionPolicyApplied", "RepositoryIntegrityVerified")
        and c.get("status") == "False"
    ]
    # A failed postBackup hook fails the session (as Stash); the snapshot it follows stays.
    phase = "Succeeded" if host.ok and not failed_post and not post_hook_errors else "Failed"
    now = clock()
    invoker = metrics_invoker(ctx)
    job = metrics.job_name(invoker.kind, namespace, invoker.name)
    target = metrics.Target.from_appbinding(ctx.appbinding)
    size = host.snapshot.total_size if host.snapshot else 0
    result = metrics.HostResult(
        opts.hostname,
        phase == "Succeeded",
        host.duration,
        size,
        host.snapshot.added_size if host.snapshot else 0,
        (host.snapshot.end_time - host.snapshot.time).total_seconds() if host.snapshot else 0,
    )
    registry = metrics.backup_session_registry(
        invoker, target, result, session_duration=host.duration, now=now.timestamp(),
        failure_reason=failure.of_backup(failed_with, bool(post_hook_errors), failed_post),
    )
    conds = _push_session_metrics(opts.pushgateway_url, job, registry, conds, now)
    if repo_state is not None:
        conds = push_metrics(
            opts.pushgateway_url,
            job,
            _repository_registry(invoker, repo_state, pitr),
            conds,
            "RepositoryMetricsPushed",
            "SuccessfullyPushedRepositoryMetrics",
            "FailedToPushRepositoryMetrics",
            now,
        )
    error = "; ".join([host.error, *post_hook_errors] if host.error else
                      [*post_hook_errors, *(f"{c['type']}: {c.get('message')}" for c in failed_post)])
    status = backup_session_status(ctx.session, ctx.invoker, host, conds, phase, now, hooks.conditions)
    cluster.patch_status("BackupSession", namespace, session_name, status)
    what = f"backup of {target.kind} {ctx.appbinding['metadata']['name']} on host {opts.hostname}"
    if host.snapshot is not None:
        message = f"{what} succeeded: snapshot {host.snapshot.short_id}"
        _event(cluster, ctx, opts.hostname, now, "Host Backup Succeeded", message, warning=False)
    else:
        _event(cluster, ctx, opts.hostname, now, "Host Backup Failed", f"{what} failed: {host.error}", warning=True)
    _session_event(cluster, ctx, opts.hostname, now, "BackupSession", session_name, phase, error)
    return TransferResult(phase, host, status, error)


# --- restore --------------------------------------------------------------------------------------


def _restore_one(
    provider: DatabaseProvider,
    conn: Connection,
    params: TaskParams,
    repo: AnyRepository,
    snapshot: str,
    source_host: str,
    deadline: float | None,
    progress_every: float = PROGRESS_EVERY,
    target: TargetRef | None = None,
) -> str:
    if snapshot == "latest" and isinstance(repo, Repository):
        # In a repository shared by several BackupConfigurations, "latest" is the newest of this target.
        snapshot = repo.latest(hostname=source_host, target=target).id
    spec = provider.restore(conn, params)
    ok = False
    with released_on_sigterm():  # SIGTERM unwinds: `finish` runs (e.g. removes the account `start` created)
        try:
            if spec.start is not None:
                spec.start()
            with (ParallelWriter(spec.parallel, deadline=deadline) if spec.parallel  # see its docstring: no filter
                  else ProcessWriter(spec.spec, deadline=deadline,
                                     stream_filter=spec.make_filter() if spec.make_filter else None)) as writer:
                with progress_reporter(f"restore of snapshot {snapshot[:8]}", every=progress_every) as progress:
                    snap = repo.restore(
                        snapshot,
                        cast(BinaryIO, writer),
                        hostname=source_host if snapshot == "latest" else None,
                        progress=progress,
                    )
                writer.finish()
            ok = True
            return snap.short_id
        finally:
            if spec.finish is not None:
                spec.finish(ok)


def restore(
    cluster: Cluster, namespace: str, restore_name: str, opts: TransferOptions, clock: Clock = _now
) -> TransferResult:
    """Run one RestoreSession's transfer and record its outcome; ContextError if it is unreadable. Everything
    it writes and logs is masked against the session's Secret values."""
    ctx = load_restore(cluster, namespace, restore_name, opts.given)
    masker = session_masker(ctx, opts.given)
    with masked_logs(masker):
        result = _restore(MaskingCluster(cluster, masker), ctx, namespace, restore_name, opts, clock)
    return replace(result, error=masker(result.error), host=replace(result.host, error=masker(result.host.error)))


def _restore(cluster: Cluster, ctx: SessionContext, namespace: str, restore_name: str, opts: TransferOptions,
             clock: Clock) -> TransferResult:
    started = clock()
    t0 = time.monotonic()
    conds = list((ctx.session.get("status") or {}).get("conditions") or [])
    rule_snaps, rule_source = restore_selection(ctx.session, opts.hostname)
    wanted = [s for s in opts.snapshot.split(",") if s.strip()] if opts.snapshot else []
    if not wanted or (wanted == ["latest"] and rule_snaps):
        wanted = rule_snaps or ["latest"]
    source_host = opts.source_hostname or rule_source or opts.hostname
    restored: list[str] = []
    hooks = _Hooks(ctx, opts, clock, conds, _summary(ctx), [])
    try:
        hooks.before("preRestore")
        opts.priority.apply()
        if opts.pitr is not None:  # a data directory is written; nothing connects to the target
            done = restore_pitr(ctx, opts.pitr, _mono_deadline(ctx, started))
            restored.append(done.backup.snapshot_id[:8])
            log.info("RestoreSession %s/%s: wrote %s from %s", namespace, restore_name, opts.pitr.pgdata,
                     pitr_summary(done))
        else:
            with _prepared(ctx, opts, started, restoring=True) as (provider, conn, params, deadline, repo):
                for snapshot in wanted:
                    restored.append(_restore_one(provider, conn, params, repo, snapshot.strip(), source_host,
                                                 deadline, opts.progress_every, target_ref(ctx)))
        host = HostOutcome(opts.hostname, True, time.monotonic() - t0)
    except Exception as exc:
        host = HostOutcome(opts.hostname, False, time.monotonic() - t0, error=describe(exc))
        log.error("restore of RestoreSession %s/%s failed: %s", namespace, restore_name, host.error)
    post_hook_errors = hooks.after("postRestore", host)
    conds = hooks.conditions
    error = "; ".join([e for e in (host.error, *post_hook_errors) if e])
    now = clock()
    phase = "Succeeded" if host.ok and not post_hook_errors else "Failed"
    invoker = metrics_invoker(ctx)
    target = metrics.Target.from_appbinding(ctx.appbinding)
    registry = metrics.restore_session_registry(
        invoker,
        target,
        metrics.HostResult(opts.hostname, phase == "Succeeded", host.duration),
        session_duration=host.duration,
    )
    job = metrics.job_name(invoker.kind, namespace, invoker.name)
    conds = _push_session_metrics(opts.pushgateway_url, job, registry, conds, now)
    status = restore_session_status(ctx.session, host, conds, now, phase)
    cluster.patch_status("RestoreSession", namespace, restore_name, status)
    what = f"restore of {', '.join(restored) or ', '.join(wanted)} into {ctx.appbinding['metadata']['name']}"
    message = f"{what} {phase.lower()}" + (f": {host.error}" if host.error else "")
    _event(cluster, ctx, opts.hostname, now, f"Host Restore {phase}", message, warning=not host.ok)
    _session_event(cluster, ctx, opts.hostname, now, "RestoreSession", restore_name, phase, error)
    return TransferResult(phase, host, status, error)
