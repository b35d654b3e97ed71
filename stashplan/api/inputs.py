"""The variables Stash provides to Tasks and Functions (reference section 1.6), computed from the invoker,
its Repository and target AppBinding. Pure; re-exported by stashplan.desired.tasks."""

from __future__ import annotations

from typing import Any

from stashplan.api.models.repository import repository_provider
from stashplan.kinds import KINDS

DEFAULT_HOST = "host-0"
TARGET_MOUNT_PATH = "/stash-data"
_RETENTION_KEEPS = ("Last", "Hourly", "Daily", "Weekly", "Monthly", "Yearly")


def _meta(obj: dict) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _namespace(obj: dict) -> str:
    return str(_meta(obj).get("namespace") or "default")


def _bool(value: Any) -> str:
    return "true" if value else "false"


def repository_inputs(repository: dict) -> dict[str, str]:
    """REPOSITORY_* and MAX_CONNECTIONS. For a local backend the bucket is mountPath and the prefix subPath."""
    spec = repository.get("spec") or {}
    backend = spec.get("backend") or {}
    provider = repository_provider(spec)
    conf = backend.get(provider) or {}
    bucket = conf.get("bucket") or conf.get("container") or conf.get("mountPath") or ""
    prefix = conf.get("prefix") or conf.get("subPath") or ""
    return {
        "REPOSITORY_NAME": str(_meta(repository).get("name", "")),
        "REPOSITORY_NAMESPACE": _namespace(repository),
        "REPOSITORY_PROVIDER": provider,
        "REPOSITORY_BUCKET": str(bucket),
        "REPOSITORY_PREFIX": str(prefix),
        "REPOSITORY_ENDPOINT": str(conf.get("endpoint") or conf.get("url") or ""),
        "REPOSITORY_REGION": str(conf.get("region") or ""),
        "REPOSITORY_INSECURE_TLS": _bool(conf.get("insecureTLS")),
        "REPOSITORY_SECRET_NAME": str(backend.get("storageSecretName") or ""),
        "REPOSITORY_SECRET_NAMESPACE": _namespace(repository),
        "MAX_CONNECTIONS": str(conf.get("maxConnections") or 0),
    }


def target_inputs(target: dict, invoker_namespace: str, appbinding: dict | None) -> dict[str, str]:
    """TARGET_* (and TARGET_APP_* when the target is an AppBinding that was found)."""
    ref = target.get("ref") or {}
    kind = str(ref.get("kind") or "AppBinding")
    info = KINDS.get(kind)
    out = {
        "TARGET_NAME": str(ref.get("name", "")),
        "TARGET_NAMESPACE": str(ref.get("namespace") or invoker_namespace),
        "TARGET_KIND": kind,
        "TARGET_API_VERSION": str(ref.get("apiVersion") or (info.api_version if info else "")),
        "TARGET_RESOURCE": info.plural if info else kind.lower() + "s",
        "TARGET_MOUNT_PATH": TARGET_MOUNT_PATH,
    }
    if target.get("paths"):
        out["TARGET_PATHS"] = ",".join(target["paths"])
    if target.get("args"):
        out["DRIVER_ARGS"] = " ".join(target["args"])
    if appbinding is not None:
        spec = appbinding.get("spec") or {}
        app_type = str(spec.get("type") or "")
        group, _, resource = app_type.rpartition("/")
        out.update(
            {
                "TARGET_APP_VERSION": str(spec.get("version") or ""),
                "TARGET_APP_TYPE": app_type,
                "TARGET_APP_GROUP": group,
                "TARGET_APP_RESOURCE": resource,
                "TARGET_APP_REPLICAS": str(target.get("replicas") or 1),
            }
        )
    return out


def retention_inputs(policy: dict) -> dict[str, str]:
    """RETENTION_*: each only when the field is non-zero / true, as Stash sets them."""
    out: dict[str, str] = {}
    for keep in _RETENTION_KEEPS:
        value = policy.get(f"keep{keep}")
        if value:
            out[f"RETENTION_KEEP_{keep.upper()}"] = str(value)
    if policy.get("keepTags"):
        out["RETENTION_KEEP_TAGS"] = ",".join(policy["keepTags"])
    if policy.get("prune"):
        out["RETENTION_PRUNE"] = "true"
    if policy.get("dryRun"):
        out["RETENTION_DRY_RUN"] = "true"
    return out


def _runtime_inputs(spec: dict, invoker_kind: str, invoker: dict, pushgateway_url: str) -> dict[str, str]:
    temp_dir = spec.get("tempDir") or {}
    return {
        "ENABLE_CACHE": _bool(not temp_dir.get("disableCaching")),
        # Where a Function may stage data: the interim volume when there is one, else under the temp mount.
        "INTERIM_DATA_DIR": "/stash-interim-volume/data" if spec.get("interimVolumeTemplate")
        else "/tmp/stash-interim-volume/data",
        "PROMETHEUS_PUSHGATEWAY_URL": pushgateway_url,
        "PROMETHEUS_JOB_NAME": f"{invoker_kind.lower()}-{_namespace(invoker)}-{_meta(invoker).get('name', '')}",
    }


def backup_inputs(
    config: dict,
    repository: dict,
    appbinding: dict | None,
    session: dict,
    *,
    pushgateway_url: str = "",
) -> dict[str, str]:
    """Stash's variables for one BackupSession of a BackupConfiguration."""
    spec = config.get("spec") or {}
    target = spec.get("target") or {}
    namespace = _namespace(session) if session else _namespace(config)
    out = {
        "NAMESPACE": namespace,
        "BACKUP_SESSION": str(_meta(session).get("name", "")),
        "INVOKER_KIND": "BackupConfiguration",
        "INVOKER_NAME": str(_meta(config).get("name", "")),
        "HOSTNAME": str(target.get("alias") or DEFAULT_HOST),
    }
    out.update(repository_inputs(repository))
    out.update(target_inputs(target, namespace, appbinding))
    out.update(retention_inputs(spec.get("retentionPolicy") or {}))
    out.update(_runtime_inputs(spec, "BackupConfiguration", config, pushgateway_url))
    return out


def restore_rule(spec: dict, hostname: str) -> dict[str, Any]:
    """The first rule (target.rules, else the deprecated top-level rules) that applies to `hostname`."""
    rules = (spec.get("target") or {}).get("rules") or spec.get("rules") or []
    for rule in rules:
        hosts = rule.get("targetHosts") or []
        if not hosts or hostname in hosts:
            return dict(rule)
    return {}


def restore_inputs(
    restore: dict,
    repository: dict,
    appbinding: dict | None,
    *,
    pushgateway_url: str = "",
) -> dict[str, str]:
    """Stash's variables for a RestoreSession; RESTORE_SNAPSHOTS etc. come from the rule for this host."""
    spec = restore.get("spec") or {}
    target = spec.get("target") or {}
    hostname = str(target.get("alias") or DEFAULT_HOST)
    rule = restore_rule(spec, hostname)
    out = {
        "NAMESPACE": _namespace(restore),
        "RESTORE_SESSION": str(_meta(restore).get("name", "")),
        "INVOKER_KIND": "RestoreSession",
        "INVOKER_NAME": str(_meta(restore).get("name", "")),
        "HOSTNAME": hostname,
        "SOURCE_HOSTNAME": str(rule.get("sourceHost") or hostname),
        "RESTORE_SNAPSHOTS": ",".join(rule.get("snapshots") or []),
        "RESTORE_PATHS": ",".join(rule.get("paths") or []),
        "INCLUDE_PATTERNS": ",".join(rule.get("include") or []),
        "EXCLUDE_PATTERNS": ",".join(rule.get("exclude") or []),
    }
    out.update(repository_inputs(repository))
    out.update(target_inputs(target, _namespace(restore), appbinding))
    out.update(_runtime_inputs(spec, "RestoreSession", restore, pushgateway_url))
    return out
