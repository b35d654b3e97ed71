"""What a transfer Job reads before it moves data: the session, its invoker, the AppBinding, its Secret and its
TLS Secret, the Repository and its storage Secret, the deadline and the retention policy. Everything it reads is
of the session's namespace (a Repository of another namespace only as its usagePolicy shares it); Secrets come
from the pod spec when it gives them (kube mode: the Job holds no Secret permission), else from the API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from providers.databases.base import ClientTLS
from stashplan.api.secret_transforms import transform_secret
from stashplan.cluster.base import Cluster
from stashplan.errors import NotFound, StashplanError
from stashplan.objects import parse_duration, parse_time
from stashplan.repository import RetentionPolicy
from stashplan.secrets import REPOSITORY_ENV, given_secrets, secret_data


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
            raise ContextError(f"Secret {self.namespace}/{secret}: RESTIC_PASSWORD is missing or empty")
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


@dataclass(frozen=True)
class PodInputs:
    """What the Job's pod spec gives the transfer: its session's Secrets (None: none given, read them through the
    API as in local mode) and a shared Repository of another namespace."""

    secrets: Mapping[str, Mapping[str, str]] | None = field(default=None, repr=False)
    repository: dict | None = None


def pod_inputs(environ: MutableMapping[str, str]) -> PodInputs:
    """The pod spec's inputs from the process environment; the Secrets are removed from it (no child inherits)."""
    raw = environ.get(REPOSITORY_ENV)
    return PodInputs(given_secrets(environ), json.loads(raw) if raw else None)


def _secret(cluster: Cluster, namespace: str, name: str, why: str, session_ns: str,
            given: PodInputs | None) -> Mapping[str, str]:
    if not name:
        return {}
    if namespace != session_ns:
        raise ContextError(f"{why}: Secret {namespace}/{name} is of another namespace than the session's "
                           f"({session_ns}); a session reads only its own namespace's Secrets")
    secrets = given.secrets if given is not None else None
    if secrets is None:
        return secret_data(_get(cluster, "Secret", namespace, name, why))
    if name not in secrets:
        raise ContextError(f"{why}: Secret {namespace}/{name} was not given to this pod by its spec")
    if not secrets[name]:
        raise ContextError(f"{why}: Secret {namespace}/{name} not found (or it holds no data)")
    return secrets[name]


def _repository(cluster: Cluster, namespace: str, session_ns: str, name: str, why: str,
                given: PodInputs | None) -> dict:
    """The session's Repository: of its own namespace, or of another one that its usagePolicy shares (given by
    the pod spec in kube mode, where the Job may read only its own namespace)."""
    if namespace == session_ns:
        return _get(cluster, "Repository", namespace, name, why)
    shared = given.repository if given is not None else None
    if shared and (shared["metadata"].get("namespace"), shared["metadata"].get("name")) == (namespace, name):
        repository = {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository", **shared}
    else:
        repository = _get(cluster, "Repository", namespace, name, why)
    allowed = ((repository.get("spec") or {}).get("usagePolicy") or {}).get("allowedNamespaces") or {}
    if (allowed.get("from") or "Same") not in ("All", "Selector"):
        raise ContextError(f"{why}: Repository {namespace}/{name} does not allow namespace {session_ns!r} "
                           f"(spec.usagePolicy.allowedNamespaces.from: {allowed.get('from') or 'Same'})")
    return repository


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


def client_tls_of(cluster: Cluster, appbinding: dict, session_ns: str | None = None,
                  given: PodInputs | None = None) -> ClientTLS | None:
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
    data = _secret(cluster, namespace, name, why, session_ns or namespace, given)
    missing = [k for k in TLS_KEYS if not data.get(k)]
    if missing:
        raise ContextError(f"{why}: Secret {namespace}/{name} has no {' or '.join(missing)}")
    return ClientTLS(cert=data["tls.crt"], key=data["tls.key"], ca=data.get("ca.crt", ""))


def _target_and_repo(cluster: Cluster, namespace: str, spec: dict, why: str,
                     given: PodInputs | None) -> tuple[dict, Mapping[str, str], dict, Mapping[str, str]]:
    ref = (spec.get("target") or {}).get("ref") or {}
    if ref.get("kind", "AppBinding") != "AppBinding":
        raise ContextError(f"{why}: spec.target.ref.kind {ref.get('kind')!r} is not AppBinding")
    ab_ns = ref.get("namespace") or namespace
    if ab_ns != namespace:  # never read: the target of another namespace is refused before any connection
        raise ContextError(f"{why}: spec.target.ref.namespace: AppBinding {ab_ns}/{ref.get('name', '')} is in "
                           f"another namespace; a target must be in the session's own namespace ({namespace})")
    appbinding = _get(cluster, "AppBinding", ab_ns, ref.get("name", ""), f"{why}: spec.target.ref")
    where = f"AppBinding {ab_ns}/{appbinding['metadata']['name']}: spec"
    db_secret = _secret(cluster, ab_ns, ((appbinding.get("spec") or {}).get("secret") or {}).get("name", ""),
                        f"{where}.secret", namespace, given)
    if transforms := (appbinding.get("spec") or {}).get("secretTransforms"):
        try:
            db_secret = transform_secret(db_secret, transforms,
                                         lambda n: dict(_secret(cluster, ab_ns, n, where, namespace, given)), where)
        except StashplanError as exc:
            raise ContextError(str(exc)) from None
    repo_ref = spec.get("repository") or {}
    repo_ns = repo_ref.get("namespace") or namespace
    repository = _repository(cluster, repo_ns, namespace, repo_ref.get("name", ""), f"{why}: spec.repository", given)
    backend = (repository.get("spec") or {}).get("backend") or {}
    storage_secret = _secret(  # of the session's namespace, also for a shared Repository: a pod gets only its own
        cluster,
        namespace,
        backend.get("storageSecretName", ""),
        f"Repository {repo_ns}/{repository['metadata']['name']}: spec.backend.storageSecretName",
        namespace,
        given,
    )
    return appbinding, db_secret, repository, storage_secret


def load_backup(cluster: Cluster, namespace: str, session_name: str, given: PodInputs | None = None) -> SessionContext:
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
    appbinding, db_secret, repository, storage_secret = _target_and_repo(cluster, namespace, spec, why, given)
    return SessionContext(
        session,
        config,
        appbinding,
        db_secret,
        repository,
        storage_secret,
        _deadline(session, spec.get("timeOut")),
        retention_of(config),
        client_tls_of(cluster, appbinding, namespace, given),
    )


def load_configuration(cluster: Cluster, namespace: str, name: str, given: PodInputs | None = None) -> SessionContext:
    """Read a BackupConfiguration and everything it names, for what runs beside its sessions (its WAL receiver):
    the configuration stands in for the session; no deadline."""
    config = _get(cluster, "BackupConfiguration", namespace, name, "--backupconfiguration")
    why = f"BackupConfiguration {namespace}/{name}"
    appbinding, db_secret, repository, storage_secret = _target_and_repo(
        cluster, namespace, config.get("spec") or {}, why, given
    )
    return SessionContext(config, config, appbinding, db_secret, repository, storage_secret, None,
                          client_tls=client_tls_of(cluster, appbinding, namespace, given))


def load_restore(cluster: Cluster, namespace: str, restore_name: str, given: PodInputs | None = None) -> SessionContext:
    """Read a RestoreSession and everything it names."""
    session = _get(cluster, "RestoreSession", namespace, restore_name, "--restoresession")
    spec = session.get("spec") or {}
    appbinding, db_secret, repository, storage_secret = _target_and_repo(
        cluster, namespace, spec, f"RestoreSession {namespace}/{restore_name}", given
    )
    return SessionContext(
        session,
        session,
        appbinding,
        db_secret,
        repository,
        storage_secret,
        _deadline(session, spec.get("timeOut")),
        client_tls=client_tls_of(cluster, appbinding, namespace, given),
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
