"""Prometheus metrics with Stash's names (new `stash_appscode_com_*` and legacy), pushed to a Pushgateway.

All metrics are gauges, each emitted under both names (stashplan's own, e.g. the last failure's reason,
under one). Builders are pure (values -> registry); `push` does the I/O with `pushadd_to_gateway` (POST:
replaces only same-named metrics in the job group). Labels hold object names only, never secrets.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway
from prometheus_client.exposition import basic_auth_handler, default_handler

from stashplan.errors import StashplanError

NEW = "stash_appscode_com_"
APPBINDING_GROUP, APPBINDING_RESOURCE = "appcatalog.appscode.com", "appbindings"
LAST_FAILURE = "stashplan_backupsession_last_failure_timestamp_seconds"


class FailureReason(StrEnum):
    """Why a backup session failed: the `reason` label of stashplan_backupsession_last_failure_timestamp_seconds."""

    TARGET_NOT_READY = "TargetNotReady"  # the database did not answer its readiness check in time
    DUMP_FAILED = "DumpFailed"  # the dump tool failed (non-zero exit, no output)
    REPOSITORY_WRITE_FAILED = "RepositoryWriteFailed"  # the repository or its storage refused or failed
    HOOK_FAILED = "HookFailed"  # a preBackup or postBackup hook failed
    RETENTION_FAILED = "RetentionFailed"  # the retention policy could not be applied
    INTEGRITY_CHECK_FAILED = "IntegrityCheckFailed"  # the repository check after the backup failed
    DEADLINE_EXCEEDED = "DeadlineExceeded"  # the session ran past its timeOut
    JOB_FAILED = "JobFailed"  # the Job failed or vanished before the transfer could report (set by the loop)
    UNKNOWN = "Unknown"


class MetricsPushError(StashplanError):
    """The Pushgateway could not be reached or refused the push; the message names the URL and reason."""


@dataclass(frozen=True)
class Invoker:
    """Labels common to every metric: who ran it and into which repository."""

    kind: str  # BackupConfiguration | RestoreSession
    name: str
    namespace: str
    repository: str
    driver: str = "Restic"

    def labels(self) -> dict[str, str]:
        return {
            "invoker_kind": self.kind,
            "invoker_name": self.name,
            "namespace": self.namespace,
            "driver": self.driver,
            "repository": self.repository,
        }


@dataclass(frozen=True)
class Target:
    """The app behind the AppBinding, labelled as Stash labels it: `kind` and `group` are the resource and the
    group of the AppBinding's `spec.type`, verbatim (`kubedb.com/postgres` -> kind `postgres`, group
    `kubedb.com`; `stashplan.dev/sqlite` -> `sqlite`); without a type, `appbindings` and
    `appcatalog.appscode.com` (the AppBinding's own resource and group)."""

    kind: str
    group: str
    name: str

    @classmethod
    def from_appbinding(cls, appbinding: dict) -> Target:
        app_type = str((appbinding.get("spec") or {}).get("type") or "")
        group, _, resource = app_type.rpartition("/")
        name = (appbinding.get("metadata") or {}).get("name", "")
        if not group and not resource:
            return cls(APPBINDING_RESOURCE, APPBINDING_GROUP, name)
        return cls(resource, group, name)


@dataclass(frozen=True)
class HostResult:
    hostname: str
    success: bool
    duration: float = 0.0
    data_size: int = 0
    uploaded: int = 0
    processing_time: float = 0.0


@dataclass(frozen=True)
class RepositoryState:
    name: str
    namespace: str
    backend: str  # local | s3 | ...
    integrity: bool
    size_bytes: int
    snapshot_count: int
    snapshots_cleaned: int
    bucket: str = ""
    prefix: str = ""


class _Metrics:
    """A registry where every gauge is created under its new and its legacy name."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def set(self, new: str, legacy: str, doc: str, labels: Mapping[str, str], value: float) -> None:
        for name in (NEW + new, legacy):
            gauge = Gauge(name, doc, labelnames=list(labels), registry=self.registry)
            gauge.labels(**labels).set(value)

    def set_one(self, name: str, doc: str, labels: Mapping[str, str], value: float) -> None:
        """A gauge of stashplan's own, under this one name (Stash has no counterpart)."""
        Gauge(name, doc, labelnames=list(labels), registry=self.registry).labels(**labels).set(value)


def job_name(invoker_kind: str, namespace: str, invoker_name: str) -> str:
    """Stash's push job name: `<lowercase invoker kind>-<namespace>-<invoker name>`."""
    return f"{invoker_kind.lower()}-{namespace}-{invoker_name}"


def _session_labels(
    invoker: Invoker, target: Target, host: HostResult
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """The labels of a session's metrics, of its target's and of its host's (each adds to the one before)."""
    common = invoker.labels()
    tgt = {**common, "kind": target.kind, "group": target.group, "name": target.name}
    return common, tgt, {**tgt, "hostname": host.hostname}


def backup_session_registry(
    invoker: Invoker, target: Target, host: HostResult, *, session_duration: float, now: float,
    failure_reason: FailureReason = FailureReason.UNKNOWN,
) -> CollectorRegistry:
    """Session, target and host metrics of a BackupSession with one target and one host. A failed one also
    carries `stashplan_backupsession_last_failure_timestamp_seconds` (`now`) with its `failure_reason`."""
    m = _Metrics()
    common, tgt, hst = _session_labels(invoker, target, host)
    ok = 1.0 if host.success else 0.0
    m.set("backupsession_success", "stash_backup_session_success", "1 if the session succeeded", common, ok)
    m.set("backupsession_target_success", "stash_backup_target_success", "1 if the target succeeded", tgt, ok)
    m.set(
        "backupsession_host_backup_success",
        "stash_backup_host_backup_success",
        "1 if the host succeeded",
        hst,
        ok,
    )
    if not host.success:
        m.set_one(LAST_FAILURE, "Unix time of the last failed backup session, and why it failed (reason)",
                  {**common, "reason": failure_reason.value}, now)
        return m.registry
    m.set(
        "backupsession_duration_seconds",
        "stash_backup_session_duration_seconds",
        "Time taken to complete the backup session",
        common,
        session_duration,
    )
    m.set(
        "backupsession_target_count_total",
        "stash_backup_target_count_total",
        "Number of targets in the session",
        common,
        1,
    )
    m.set(
        "backupsession_last_success_time_seconds",
        "stash_backup_last_success_time_seconds",
        "Unix time of the last successful backup session",
        common,
        now,
    )
    m.set(
        "backupsession_target_host_count_total",
        "stash_backup_target_host_count_total",
        "Number of hosts in the target",
        tgt,
        1,
    )
    m.set(
        "backupsession_target_last_success_time_seconds",
        "stash_backup_target_last_success_time_seconds",
        "Unix time of the last successful backup of the target",
        tgt,
        now,
    )
    m.set(
        "backupsession_host_backup_duration_seconds",
        "stash_backup_host_backup_duration_seconds",
        "Time taken to back up the host",
        hst,
        host.duration,
    )
    m.set(
        "backupsession_host_data_size_bytes",
        "stash_backup_host_data_size_bytes",
        "Total size of the data backed up from the host",
        hst,
        host.data_size,
    )
    m.set(
        "backupsession_host_data_uploaded_bytes",
        "stash_backup_host_data_uploaded_bytes",
        "Bytes uploaded from the host",
        hst,
        host.uploaded,
    )
    m.set(
        "backupsession_host_data_processing_time_seconds",
        "stash_backup_host_data_processing_time_seconds",
        "Time taken to process the host's data",
        hst,
        host.processing_time,
    )
    m.set(
        "backupsession_host_files_total",
        "stash_backup_host_files_total",
        "Number of files backed up from the host",
        hst,
        1,
    )
    return m.registry


def repository_labels(invoker: Invoker, repo: RepositoryState) -> dict[str, str]:
    """The labels of every repository metric: the invoker's, then the Repository's name, namespace, backend."""
    labels = {**invoker.labels(), "namespace": repo.namespace, "name": repo.name, "backend": repo.backend}
    if repo.bucket:
        labels["bucket"] = repo.bucket
    if repo.prefix:
        labels["prefix"] = repo.prefix
    return labels


def repository_registry(invoker: Invoker, repo: RepositoryState) -> CollectorRegistry:
    """Repository metrics, labelled with the Repository's own name, namespace and backend."""
    m = _Metrics()
    labels = repository_labels(invoker, repo)
    m.set(
        "repository_integrity",
        "stash_repository_integrity",
        "1 if the repository check passed",
        labels,
        1.0 if repo.integrity else 0.0,
    )
    m.set(
        "repository_size_bytes",
        "stash_repository_size_bytes",
        "Bytes stored in the repository",
        labels,
        repo.size_bytes,
    )
    m.set(
        "repository_snapshot_count",
        "stash_repository_snapshot_count",
        "Snapshots in the repository",
        labels,
        repo.snapshot_count,
    )
    m.set(
        "repository_snapshot_cleaned",
        "stash_repository_snapshot_cleaned",
        "Snapshots removed by the last retention run",
        labels,
        repo.snapshots_cleaned,
    )
    return m.registry


def restore_session_registry(
    invoker: Invoker, target: Target, host: HostResult, *, session_duration: float
) -> CollectorRegistry:
    """Session, target and host metrics of a RestoreSession with one target and one host."""
    m = _Metrics()
    common, tgt, hst = _session_labels(invoker, target, host)
    ok = 1.0 if host.success else 0.0
    m.set("restoresession_success", "stash_restore_session_success", "1 if the restore succeeded", common, ok)
    m.set(
        "restoresession_target_success",
        "stash_restore_target_success",
        "1 if the target was restored",
        tgt,
        ok,
    )
    m.set(
        "restoresession_host_restore_success",
        "stash_restore_host_restore_success",
        "1 if the host was restored",
        hst,
        ok,
    )
    if not host.success:
        return m.registry
    m.set(
        "restoresession_duration_seconds",
        "stash_restore_session_duration_seconds",
        "Time taken to complete the restore session",
        common,
        session_duration,
    )
    m.set(
        "restoresession_target_count_total",
        "stash_restore_target_count_total",
        "Number of targets in the restore session",
        common,
        1,
    )
    m.set(
        "restoresession_target_host_count_total",
        "stash_restore_target_host_count_total",
        "Number of hosts in the target",
        tgt,
        1,
    )
    m.set(
        "restoresession_host_restore_duration_seconds",
        "stash_restore_host_restore_duration_seconds",
        "Time taken to restore the host",
        hst,
        host.duration,
    )
    return m.registry


def _host_port(parts: SplitResult) -> str:
    """The URL's network location without user:password."""
    host = parts.hostname or ""
    return (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")


def _split(url: str) -> SplitResult:
    return urlsplit(url if "://" in url else "http://" + url)


def has_credentials(url: str) -> bool:
    """Whether the URL carries user[:password]@."""
    return _split(url).username is not None


def redact(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = _split(url)
    return urlunsplit((parts.scheme, _host_port(parts), parts.path, "", ""))


def push(url: str, job: str, registry: CollectorRegistry, *, timeout: float = 10.0) -> None:
    """POST the registry to the Pushgateway's job group; MetricsPushError on any failure. A `user:password@`
    in the URL is sent as HTTP basic auth (urllib would take it for part of the host name)."""
    parts = _split(url)
    handler = default_handler
    if parts.username is not None:
        user, password = unquote(parts.username), unquote(parts.password or "")

        def handler(url: str, method: str, timeout: float | None, headers: list[tuple[str, str]],
                    data: bytes) -> Callable[[], None]:
            return basic_auth_handler(url, method, timeout, headers, data, user, password)

        url = urlunsplit((parts.scheme, _host_port(parts), parts.path, parts.query, ""))
    try:
        pushadd_to_gateway(url, job=job, registry=registry, timeout=timeout, handler=handler)
    except urllib.error.HTTPError as exc:
        raise MetricsPushError(
            f"Pushgateway {redact(url)} refused the push: HTTP {exc.code} {exc.reason}"
        ) from None
    except urllib.error.URLError as exc:
        raise MetricsPushError(f"Pushgateway {redact(url)} unreachable: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise MetricsPushError(f"Pushgateway {redact(url)} unreachable: {exc}") from None
