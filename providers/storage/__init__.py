"""Object-store backends behind one small interface (`Storage`), and the factories that pick one.

`open_storage("local:/abs/path" | "/abs/path" | "s3:https://host[:port]/bucket[/prefix]" | "memory:x")`;
`storage_from_repository(repository_dict, secret_data)` reads Stash's `spec.backend`.
Every returned storage is wrapped in `RetryingStorage`.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

from providers.storage.base import ObjectInfo, ObjectNotFound, Storage, StorageError
from providers.storage.local import LocalStorage
from providers.storage.memory import MemoryStorage
from providers.storage.retry import RetryingStorage

__all__ = [
    "LocalStorage",
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


def storage_from_repository(repository: dict, secret_data: Mapping[str, str]) -> Storage:
    """The storage of a Repository dict (stash.appscode.com/v1alpha1) with its decoded storage Secret."""
    name = (repository.get("metadata") or {}).get("name", "?")
    backend = (repository.get("spec") or {}).get("backend") or {}
    if "local" in backend:
        local = backend["local"] or {}
        mount = str(local.get("mountPath") or "")
        if not mount.startswith("/"):
            raise StorageError(f"Repository {name}: spec.backend.local.mountPath must be an absolute path")
        path = posixpath.join(mount, str(local.get("subPath") or "").lstrip("/"))
        return RetryingStorage(LocalStorage(path.rstrip("/") or "/"))
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
    kinds = ", ".join(sorted(backend)) or "none"
    raise StorageError(
        f"Repository {name}: spec.backend: unsupported backend ({kinds}); stashplan supports local, s3"
    )
