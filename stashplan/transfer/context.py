"""What a transfer Job reads from the cluster before it moves data: the session, its invoker, the
AppBinding, its Secret and its TLS Secret, the Repository and its storage Secret, the deadline and the
retention policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers.databases.base import ClientTLS
from stashplan.api.secret_transforms import transform_secret
from stashplan.cluster.base import Cluster
from stashplan.errors import NotFound, StashplanError
from stashplan.objects import parse_duration, parse_time
from stashplan.repository import RetentionPolicy
from stashplan.secrets import secret_data


class ContextError(StashplanError):
    """The session's inputs cannot be read: a missing object or field, named in the message."""


@dataclass(frozen=True)
class Retention:
    policy: RetentionPolicy
    prune: bool = False
    dry_run: bool = False
    name: str = ""


@dataclass(frozen=True)
class SessionContext:
    """Everything one backup or restore needs, read once at the start."""

    session: dict
    invoker: dict  # BackupConfiguration for a backup, the RestoreSession itself for a restore
    appbinding: dict
    db_secret: Mapping[str, str] = field(repr=False)
    repository: dict
    storage_secret: Mapping[str, str] = field(repr=False)
    deadline: datetime | None
    retention: Retention | None = None
    client_tls: ClientTLS | None = field(default=None, repr=False)  # the AppBinding's spec.tlsSecret

    @property
    def namespace(self) -> str:
        return str(self.session["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.session["metadata"]["name"])

    @property
    def password(self) -> str:
        value = self.storage_secret.get("RESTIC_PASSWORD", "")
        if not value:
            secret = (self.repository.get("spec") or {}).get("backend", {}).get("storageSecretName", "")
            raise ContextError(f"Secret {self.repo_namespace}/{secret}: RESTIC_PASSWORD is missing or empty")
        return value

    @property
    def repo_namespace(self) -> str:
        return str(self.repository["metadata"].get("namespace") or self.namespace)


def _get(cluster: Cluster, kind: str, namespace: str, name: str, why: str) -> dict:
    if not name:
        raise ContextError(f"{why}: no {kind} name given")
    try:
        return cluster.get(kind, namespace, name)
    except NotFound:
        raise ContextError(f"{why}: {kind} {namespace}/{name} not found") from None


def _secret(cluster: Cluster, namespace: str, name: str, why: str) -> dict[str, str]:
    return secret_data(_get(cluster, "Secret", namespace, name, why)) if name else {}


def _deadline(session: dict, timeout: Any) -> datetime | None:
    status = session.get("status") or {}
    if status.get("sessionDeadline"):
        return parse_time(status["sessionDeadline"])
    try:
        delta = parse_duration(timeout)
    except ValueError:
        raise ContextError(f"timeOut {timeout!r} is not a duration") from None
    start = parse_time(session["metadata"].get("creationTimestamp"))
    return start + delta if delta and start else None


def retention_of(config: dict) -> Retention | None:
    """The BackupConfiguration's `retentionPolicy` as a RetentionPolicy (None when absent)."""
    rp = (config.get("spec") or {}).get("retentionPolicy")
    if not rp:
        return None
    keep = {
        f: int(rp.get(k) or 0)
        for f, k in (
            ("keep_last", "keepLast"),
            ("keep_hourly", "keepHourly"),
            ("keep_daily", "keepDaily"),
            ("keep_weekly", "keepWeekly"),
            ("keep_monthly", "keepMonthly"),
            ("keep_yearly", "keepYearly"),
        )
    }
    policy = RetentionPolicy(**keep, keep_tags=tuple(rp.get("keepTags") or ()))
    return Retention(policy, bool(rp.get("prune")), bool(rp.get("dryRun")), str(rp.get("name") or ""))


TLS_KEYS = ("tls.crt", "tls.key")  # required in a tlsSecret; `ca.crt` is optional


def client_tls_of(cluster: Cluster, appbinding: dict) -> ClientTLS | None:
    """The client certificate named by the AppBinding's `spec.tlsSecret` (same namespace), or None.
    A missing Secret or key is a ContextError naming the AppBinding and the field, never a value."""
    ref = (appbinding.get("spec") or {}).get("tlsSecret")
    if not ref:
        return None
    meta = appbinding["metadata"]
    namespace = str(meta.get("namespace") or "default")
    why = f"AppBinding {namespace}/{meta['name']}: spec.tlsSecret"
    name = str(ref.get("name") or "") if isinstance(ref, dict) else ""
    if not name:
        raise ContextError(f"{why}.name is required")
    data = _secret(cluster, namespace, name, why)
    missing = [k for k in TLS_KEYS if not data.get(k)]
    if missing:
        raise ContextError(f"{why}: Secret {namespace}/{name} has no {' or '.join(missing)}")
    return ClientTLS(cert=data["tls.crt"], key=data["tls.key"], ca=data.get("ca.crt", ""))


def _target_and_repo(cluster: Cluster, namespace: str, spec: dict, why: str) -> tuple[dict, dict, dict, dict]:
    ref = (spec.get("target") or {}).get("ref") or {}
    if ref.get("kind", "AppBinding") != "AppBinding":
        raise ContextError(f"{why}: spec.target.ref.kind {ref.get('kind')!r} is not AppBinding")
    ab_ns = ref.get("namespace") or namespace
    appbinding = _get(cluster, "AppBinding", ab_ns, ref.get("name", ""), f"{why}: spec.target.ref")
    where = f"AppBinding {ab_ns}/{appbinding['metadata']['name']}: spec"
    db_secret = _secret(cluster, ab_ns, ((appbinding.get("spec") or {}).get("secret") or {}).get("name", ""),
                        f"{where}.secret")
    if transforms := (appbinding.get("spec") or {}).get("secretTransforms"):
        try:
            db_secret = transform_secret(db_secret, transforms, lambda n: _secret(cluster, ab_ns, n, where), where)
        except StashplanError as exc:
            raise ContextError(str(exc)) from None
    repo_ref = spec.get("repository") or {}
    repo_ns = repo_ref.get("namespace") or namespace
    repository = _get(cluster, "Repository", repo_ns, repo_ref.get("name", ""), f"{why}: spec.repository")
    backend = (repository.get("spec") or {}).get("backend") or {}
    storage_secret = _secret(
        cluster,
        repo_ns,
        backend.get("storageSecretName", ""),
        f"Repository {repo_ns}/{repository['metadata']['name']}: spec.backend.storageSecretName",
    )
    return appbinding, db_secret, repository, storage_secret


def load_backup(cluster: Cluster, namespace: str, session_name: str) -> SessionContext:
    """Read a BackupSession, its BackupConfiguration and everything they name."""
    session = _get(cluster, "BackupSession", namespace, session_name, "--backupsession")
    invoker_ref = (session.get("spec") or {}).get("invoker") or {}
    why = f"BackupSession {namespace}/{session_name}"
    if invoker_ref.get("kind", "BackupConfiguration") != "BackupConfiguration":
        raise ContextError(f"{why}: spec.invoker.kind {invoker_ref.get('kind')!r} is not supported")
    config = _get(
        cluster, "BackupConfiguration", namespace, invoker_ref.get("name", ""), f"{why}: spec.invoker"
    )
    spec = config.get("spec") or {}
    why = f"BackupConfiguration {namespace}/{config['metadata']['name']}"
    appbinding, db_secret, repository, storage_secret = _target_and_repo(cluster, namespace, spec, why)
    return SessionContext(
        session,
        config,
        appbinding,
        db_secret,
        repository,
        storage_secret,
        _deadline(session, spec.get("timeOut")),
        retention_of(config),
        client_tls_of(cluster, appbinding),
    )


def load_restore(cluster: Cluster, namespace: str, restore_name: str) -> SessionContext:
    """Read a RestoreSession and everything it names."""
    session = _get(cluster, "RestoreSession", namespace, restore_name, "--restoresession")
    spec = session.get("spec") or {}
    appbinding, db_secret, repository, storage_secret = _target_and_repo(
        cluster, namespace, spec, f"RestoreSession {namespace}/{restore_name}"
    )
    return SessionContext(
        session,
        session,
        appbinding,
        db_secret,
        repository,
        storage_secret,
        _deadline(session, spec.get("timeOut")),
        client_tls=client_tls_of(cluster, appbinding),
    )


def restore_selection(session: dict, hostname: str) -> tuple[list[str], str]:
    """The snapshots to restore for `hostname` and the source host, from `spec.target.rules`."""
    spec = session.get("spec") or {}
    rules = (spec.get("target") or {}).get("rules") or spec.get("rules") or []
    for rule in rules:
        hosts = rule.get("targetHosts") or []
        if not hosts or hostname in hosts:
            return [str(s) for s in rule.get("snapshots") or []], str(rule.get("sourceHost") or "")
    return [], ""


def seconds_until(deadline: datetime | None, now: datetime) -> float | None:
    return None if deadline is None else (deadline - now).total_seconds()
