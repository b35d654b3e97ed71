"""KubeDB database objects (`kubedb.com` Postgres, MySQL, MariaDB, Redis...) in a folder of manifests: noted,
never applied (KubeDB runs them), and the AppBinding KubeDB would create for one. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from stashplan.api.models.common import check_dns_label, check_dns_subdomain

GROUP = "kubedb.com"
BLUEPRINT_ANNOTATIONS = ("stash.appscode.com/", "params.stash.appscode.com/")


@dataclass(frozen=True)
class Database:
    """How KubeDB exposes one kind: its AppBinding type, its service's port, scheme, path and query."""

    app_type: str
    resource: str  # the kind's plural, for the AppBinding's app.kubernetes.io/name label
    port: int
    scheme: str
    path: str = "/"
    query: str = ""


DATABASES: dict[str, Database] = {
    "Postgres": Database("kubedb.com/postgres", "postgreses", 5432, "postgresql", "/", "sslmode=disable"),
    "MySQL": Database("kubedb.com/mysql", "mysqls", 3306, "mysql"),
    "MariaDB": Database("kubedb.com/mariadb", "mariadbs", 3306, "mysql"),
    "Redis": Database("kubedb.com/redis", "redises", 6379, "redis", ""),
}


def is_kubedb(obj: dict) -> bool:
    return str(obj.get("apiVersion") or "").split("/", 1)[0] == GROUP


def problems(obj: dict) -> list[tuple[str, str]]:
    """Light checks of a KubeDB object: its name and namespace (the rest is KubeDB's business)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        return [("metadata.name", "required field is missing")]
    found = []
    for check, key in ((check_dns_subdomain, "name"), (check_dns_label, "namespace")):
        if meta.get(key) is not None:
            try:
                check(str(meta[key]))
            except ValueError as exc:
                found.append((f"metadata.{key}", str(exc)))
    return found


def refusal(obj: dict) -> str | None:
    """Why a KubeDB object of this kind cannot be backed up by stashplan, or None."""
    kind = str(obj.get("kind") or "")
    if kind in DATABASES:
        return None
    return (f"stashplan has no {kind} addon (built-in: {', '.join(DATABASES)}); KubeDB's {kind} cannot be "
            "backed up here")


def secret_name(db: dict) -> str:
    auth = (db.get("spec") or {}).get("authSecret") or {}
    return str(auth.get("name") or f"{db['metadata']['name']}-auth")


def appbinding_for(db: dict) -> dict:
    """The AppBinding KubeDB creates for a database: same name and namespace, its service and auth Secret, the
    type and version; the database's Stash annotations (auto-backup) are carried over as KubeDB does."""
    meta, spec = db["metadata"], db.get("spec") or {}
    info = DATABASES[str(db["kind"])]
    service = {"name": meta["name"], "port": info.port, "scheme": info.scheme}
    if info.path:
        service["path"] = info.path
    if info.query:
        service["query"] = info.query
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(BLUEPRINT_ANNOTATIONS)}
    out_meta: dict = {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "default",
        "labels": {"app.kubernetes.io/component": "database", "app.kubernetes.io/instance": meta["name"],
                   "app.kubernetes.io/name": f"{info.resource}.{GROUP}"},
    }
    if annotations:
        out_meta["annotations"] = annotations
    return {
        "apiVersion": "appcatalog.appscode.com/v1alpha1",
        "kind": "AppBinding",
        "metadata": out_meta,
        "spec": {
            "appRef": {"apiGroup": GROUP, "kind": db["kind"], "name": meta["name"],
                       "namespace": out_meta["namespace"]},
            "clientConfig": {"service": service},
            "secret": {"name": secret_name(db)},
            "type": info.app_type,
            "version": str(spec.get("version") or ""),
        },
    }
