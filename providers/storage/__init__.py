"""Object-store backends behind one small interface (`Storage`), and the factories that pick one.

`open_storage("local:/abs/path" | "/abs/path" | "s3:https://host[:port]/bucket[/prefix]" | "memory:x"
| "gs:bucket:/prefix" | "azure:container:/prefix" | "swift:container:/prefix" | "b2:bucket:/prefix"
| "rest:http(s)://host/path/")` (restic's repository strings, credentials from `env`);
`storage_from_repository(repository_dict, secret_data)` reads Stash's `spec.backend`.
Every returned storage is wrapped in `RetryingStorage`.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

from providers.storage.base import (
    IncompleteListing,
    MakesBucket,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
)
from providers.storage.local import LocalStorage
from providers.storage.memory import MemoryStorage
from providers.storage.retry import RetryingStorage

__all__ = [
    "IncompleteListing",
    "LocalStorage",
    "MakesBucket",
    "MemoryStorage",
    "ObjectInfo",
    "ObjectNotFound",
    "RetryingStorage",
    "Storage",
    "StorageError",
    "open_storage",
    "storage_from_repository",
]

_memory: dict[str, MemoryStorage] = {}
_memory_lock = threading.Lock()


def open_storage(url: str, *, env: Mapping[str, str] | None = None) -> Storage:
    """The storage named by a repository URL; `env` holds AWS_* / CA_CERT_DATA (default os.environ)."""
    env = os.environ if env is None else env
    if url.startswith("s3:"):
        return RetryingStorage(_s3_from_url(url[3:], env))
    for scheme, provider in _URL_SCHEMES.items():
        if url.startswith(scheme + ":"):
            return RetryingStorage(_from_url(provider, url[len(scheme) + 1 :], env))
    if url.startswith("memory:"):
        with _memory_lock:
            return _memory.setdefault(url[7:], MemoryStorage(url[7:]))
    path = url[6:] if url.startswith("local:") else url
    if not path.startswith("/"):
        raise StorageError(
            f"repository {url!r}: expected local:/absolute/path or s3:https://host/bucket/prefix"
        )
    return RetryingStorage(LocalStorage(path))


def _s3_from_url(rest: str, env: Mapping[str, str]) -> Storage:
    from providers.storage.s3 import S3Storage, settings_from_env

    if "://" not in rest:
        rest = "https://" + rest
    parts = urlsplit(rest)
    path = parts.path.strip("/")
    bucket, _, prefix = path.partition("/")
    if not parts.netloc or not bucket:
        raise StorageError(f"repository s3:{rest}: expected s3:https://host[:port]/bucket[/prefix]")
    endpoint = f"{parts.scheme}://{parts.netloc}"
    return S3Storage(settings_from_env(endpoint, bucket, prefix, env))


def _inside_mount(name: str, mount: str, sub_path: str) -> str:
    """`<mountPath>/<subPath>` with symlinks resolved, refused unless it stays inside mountPath (resolved too): a
    `..`, an absolute subPath or a symlink under mountPath pointing elsewhere would put the repository outside."""
    if sub_path.startswith("/") or ".." in sub_path.split("/"):
        raise StorageError(f"Repository {name}: spec.backend.local.subPath {sub_path!r} must stay inside mountPath")
    root = os.path.realpath(mount)
    path = os.path.realpath(posixpath.join(mount, sub_path))
    if os.path.commonpath([root, path]) != root:
        raise StorageError(f"Repository {name}: spec.backend.local.subPath {sub_path!r} leads outside mountPath "
                           f"(through a symbolic link to {path})")
    return path


def storage_from_repository(repository: dict, secret_data: Mapping[str, str]) -> Storage:
    """The storage of a Repository dict (stash.appscode.com/v1alpha1) with its decoded storage Secret."""
    name = (repository.get("metadata") or {}).get("name", "?")
    backend = (repository.get("spec") or {}).get("backend") or {}
    if "local" in backend:
        local = backend["local"] or {}
        mount = str(local.get("mountPath") or "")
        if not mount.startswith("/"):
            raise StorageError(f"Repository {name}: spec.backend.local.mountPath must be an absolute path")
        return RetryingStorage(LocalStorage(_inside_mount(name, mount, str(local.get("subPath") or ""))))
    if "s3" in backend:
        from providers.storage.s3 import S3Storage, settings_from_env

        s3 = backend["s3"] or {}
        endpoint = str(s3.get("endpoint") or "")
        bucket = str(s3.get("bucket") or "")
        if not endpoint or not bucket:
            raise StorageError(f"Repository {name}: spec.backend.s3.endpoint and .bucket are required")
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        settings = settings_from_env(
            endpoint,
            bucket,
            str(s3.get("prefix") or ""),
            secret_data,
            region=str(s3.get("region") or ""),
            insecure_tls=bool(s3.get("insecureTLS", False)),
        )
        return RetryingStorage(S3Storage(settings))
    for provider in _OPENERS:
        if provider in backend:
            spec = backend[provider] or {}
            try:
                return RetryingStorage(_OPENERS[provider](spec, secret_data))
            except StorageError as exc:
                raise StorageError(f"Repository {name}: spec.backend.{provider}: {exc}") from exc
    kinds = ", ".join(sorted(backend)) or "none"
    raise StorageError(
        f"Repository {name}: spec.backend: unsupported backend ({kinds}); stashplan supports local, s3, gcs, azure, swift, b2, rest"
    )


_ca_files: list[IO[str]] = []  # CA bundles written from CA_CERT_DATA live as long as the process


def _ca_file(secret: Mapping[str, str]) -> str | None:
    data = secret.get("CA_CERT_DATA", "")
    if not data:
        return None
    fh = tempfile.NamedTemporaryFile("w", suffix=".crt", prefix="stashplan-ca-")  # noqa: SIM115 (kept open)
    fh.write(data)
    fh.flush()
    _ca_files.append(fh)
    return fh.name


def _gcs(spec: Mapping[str, Any], secret: Mapping[str, str]) -> Storage:
    from providers.storage.gcs import gcs_storage

    return gcs_storage(spec, secret)


def _azure(spec: Mapping[str, Any], secret: Mapping[str, str]) -> Storage:
    from providers.storage.azure import azure_storage

    return azure_storage(spec, secret)


def _swift(spec: Mapping[str, Any], secret: Mapping[str, str]) -> Storage:
    from providers.storage.swift import swift_storage

    return swift_storage(spec, secret, _ca_file(secret))


def _b2(spec: Mapping[str, Any], secret: Mapping[str, str]) -> Storage:
    from providers.storage.b2 import b2_storage

    return b2_storage(spec, secret)


def _rest(spec: Mapping[str, Any], secret: Mapping[str, str]) -> Storage:
    from providers.storage.rest import rest_storage

    return rest_storage(str(spec.get("url") or ""), secret, _ca_file(secret))


# Stash's spec.backend.<provider> -> a backend (imported lazily: each pulls in its own SDK).
_OPENERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], Storage]] = {
    "gcs": _gcs, "azure": _azure, "swift": _swift, "b2": _b2, "rest": _rest,
}  # fmt: skip
_URL_SCHEMES = {"gs": "gcs", "azure": "azure", "swift": "swift", "b2": "b2", "rest": "rest"}


def _from_url(provider: str, rest: str, env: Mapping[str, str]) -> Storage:
    """restic's `gs:bucket:/prefix`-style strings (and `rest:<url>`) as a backend spec."""
    if provider == "rest":
        return _OPENERS["rest"]({"url": rest}, env)
    where, sep, prefix = rest.partition(":")
    if not where or (sep and not prefix.startswith("/")):
        raise StorageError(f"repository {provider}:{rest}: expected {provider}:<bucket>:/<prefix>")
    field = "container" if provider in ("azure", "swift") else "bucket"
    return _OPENERS[provider]({field: where, "prefix": prefix.strip("/")}, env)
