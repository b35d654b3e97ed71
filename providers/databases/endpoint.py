"""Where an AppBinding's database is: `spec.clientConfig.url` and/or `.service`, read as Stash's addons read them.

KubeDB writes both (e.g. `service: {name: sample-mysql, port: 3306, path: /}` beside `url: tcp(sample-mysql:3306)/`).
Precedence, as kmodules' AppBinding helpers that Stash's addons call: the host and port come from `service` when it
is set (`Hostname()`/`Port()` prefer it), else from the URL; the database (path), the query and a user name in the
URL come from the URL when it has them (`URL()` prefers it), else from the service. A URL is `scheme://host:port/db?q`
or the Go MySQL driver's DSN KubeDB writes for MySQL/MariaDB, `[user@]tcp(host:port)/db[?q]`. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from stashplan.errors import TransferError

# [user[:password]@]net(addr)/dbname[?params] (github.com/go-sql-driver/mysql); the password part is never read
_DSN = re.compile(r"^(?:(?P<user>[^@/]*)@)?(?P<net>[A-Za-z0-9]+)\((?P<addr>[^)]*)\)/(?P<db>[^?]*)(?:\?(?P<q>.*))?$")


@dataclass(frozen=True)
class Endpoint:
    """The parts of a database address; "" (or None) where the AppBinding does not say."""

    scheme: str
    host: str
    port: int | None
    path: str  # raw, e.g. "/shop" (sqlite: the file path)
    query: str
    user: str = ""


def appbinding_name(appbinding: dict) -> str:
    meta = appbinding.get("metadata") or {}
    return f"AppBinding {meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def service_host(appbinding: dict) -> str:
    """Where `spec.clientConfig.service` is reached, as Stash does: `<name>.<namespace>.svc`, the namespace
    being the service's or else the AppBinding's. A name that is no Service name (an IP address, `localhost`,
    a dotted host name) is used as it is, so that local mode can point at this machine."""
    svc = ((appbinding.get("spec") or {}).get("clientConfig") or {}).get("service") or {}
    name = str(svc.get("name") or "")
    if name == "localhost" or "." in name or ":" in name:
        return name
    namespace = svc.get("namespace") or (appbinding.get("metadata") or {}).get("namespace") or "default"
    return f"{name}.{namespace}.svc"


def _port(text: str, where: str) -> int | None:
    if not text:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise TransferError(f"{where}: spec.clientConfig.url has an invalid port")
    return int(text)


def _from_url(url: str, where: str) -> Endpoint:
    dsn = _DSN.match(url) if "://" not in url else None
    if dsn is not None:
        if dsn["net"] != "tcp":
            raise TransferError(f"{where}: spec.clientConfig.url: only tcp(host:port) addresses are supported, "
                                f"not {dsn['net']}(...)")
        host, _, port = dsn["addr"].rpartition(":") if ":" in dsn["addr"] else (dsn["addr"], "", "")
        user = unquote((dsn["user"] or "").partition(":")[0])
        return Endpoint("mysql", host.strip("[]"), _port(port, where), "/" + dsn["db"], dsn["q"] or "", user)
    parts: SplitResult = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise TransferError(f"{where}: spec.clientConfig.url has an invalid port") from None
    return Endpoint(parts.scheme, parts.hostname or "", port, parts.path, parts.query, unquote(parts.username or ""))


def _from_service(appbinding: dict, where: str) -> Endpoint:
    svc = ((appbinding.get("spec") or {}).get("clientConfig") or {}).get("service") or {}
    if not svc.get("name"):
        raise TransferError(f"{where}: spec.clientConfig.service.name is required")
    port = int(svc["port"]) if svc.get("port") else None
    return Endpoint(str(svc.get("scheme") or ""), service_host(appbinding), port, str(svc.get("path") or ""),
                    str(svc.get("query") or ""))


def endpoint(appbinding: dict) -> Endpoint:
    """The AppBinding's database address with the precedence the module docstring gives; TransferError naming
    the AppBinding and the field when it has neither url nor service, or they cannot be read."""
    cc = (appbinding.get("spec") or {}).get("clientConfig") or {}
    where = appbinding_name(appbinding)
    url = _from_url(str(cc["url"]), where) if cc.get("url") else None
    svc = _from_service(appbinding, where) if cc.get("service") else None
    if url is None and svc is None:
        raise TransferError(f"{where}: spec.clientConfig needs url or service")
    if svc is None:
        assert url is not None
        return url
    if url is None:
        return svc
    return Endpoint(
        scheme=svc.scheme or url.scheme,
        host=svc.host,
        port=svc.port if svc.port is not None else url.port,
        path=url.path if url.path.strip("/") else svc.path,
        query=url.query or svc.query,
        user=url.user,
    )
