"""The `swift` backend (python-swiftclient): objects under `<prefix>/` in one OpenStack Swift container.

Authentication as restic reads it from the storage Secret: ST_AUTH + ST_USER + ST_KEY (v1, e.g. tempauth),
or a pre-authenticated OS_STORAGE_URL + OS_AUTH_TOKEN. Keystone (OS_AUTH_URL ...) is refused with a
one-line error: it cannot be tested here. One connection per thread; swiftclient's retries are off.
A listing counts when every page parsed as a JSON list in order and the last was shorter than a page;
no count comes with it, so entries dropped from a well-formed page cannot be seen here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import urllib3

from providers.storage.base import (
    IncompleteListing,
    ObjectInfo,
    ObjectNotFound,
    Source,
    StorageError,
    check_name,
)
from providers.storage.streams import chunk_stream
from stashplan.errors import TransientError

V1_KEYS = ("ST_AUTH", "ST_USER", "ST_KEY")
TOKEN_KEYS = ("OS_STORAGE_URL", "OS_AUTH_TOKEN")
TRANSIENT_STATUS = {408, 429, 498, 500, 502, 503, 504}
LIST_PAGE = 10000  # limit of each container GET (Swift's default maximum)


@dataclass(frozen=True)
class SwiftAuth:
    """Either v1 credentials (auth_url, user, key) or a storage URL with a token."""

    auth_url: str = ""
    user: str = ""
    key: str = ""
    storage_url: str = ""
    token: str = ""

    @classmethod
    def from_secret(cls, secret: Mapping[str, str]) -> SwiftAuth:
        get = lambda k: secret.get(k, "").strip()  # noqa: E731
        if any(get(k) for k in V1_KEYS):
            missing = [k for k in V1_KEYS if not get(k)]
            if missing:
                raise StorageError(f"swift: the storage Secret has ST_* keys but no {', '.join(missing)}")
            return cls(auth_url=get("ST_AUTH"), user=get("ST_USER"), key=get("ST_KEY"))
        if any(get(k) for k in TOKEN_KEYS):
            missing = [k for k in TOKEN_KEYS if not get(k)]
            if missing:
                raise StorageError(f"swift: the storage Secret has no {', '.join(missing)}")
            return cls(storage_url=get("OS_STORAGE_URL"), token=get("OS_AUTH_TOKEN"))
        if get("OS_AUTH_URL"):
            raise StorageError("swift: keystone authentication (OS_AUTH_URL) is not supported; give "
                               "ST_AUTH/ST_USER/ST_KEY or OS_STORAGE_URL/OS_AUTH_TOKEN")
        raise StorageError("swift: the storage Secret has no ST_AUTH/ST_USER/ST_KEY nor OS_STORAGE_URL/OS_AUTH_TOKEN")

    @property
    def keys(self) -> str:
        return "/".join(V1_KEYS) if self.auth_url else "/".join(TOKEN_KEYS)


class SwiftStorage:
    """One container (and prefix), created on first write when missing."""

    def __init__(self, container: str, prefix: str, auth: SwiftAuth, *, cacert: str | None = None) -> None:
        from swiftclient.exceptions import ClientException

        self.container = container
        self.prefix = prefix.strip("/")
        self.auth = auth
        self._cacert = cacert
        self._local = threading.local()
        self._client_error = ClientException
        self._container_checked = False
        self.list_page = LIST_PAGE

    @property
    def location(self) -> str:
        where = self.auth.storage_url or self.auth.auth_url
        return f"swift:{where}:{self.container}:/{self.prefix}"

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            from swiftclient.client import Connection

            a = self.auth
            conn = Connection(authurl=a.auth_url or None, user=a.user or None, key=a.key or None,
                              preauthurl=a.storage_url or None, preauthtoken=a.token or None,
                              retries=0, cacert=self._cacert, timeout=60, auth_version="1")
            self._local.conn = conn
        return conn

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _map(self, exc: Exception, what: str, name: str = "") -> Exception:
        if isinstance(exc, self._client_error):
            status = int(exc.http_status or 0)
            if status == 404 and name:
                return ObjectNotFound(self.location, name)
            if status in (401, 403) or "Unauthorized" in str(exc) or "Auth GET failed" in str(exc):
                return StorageError(f"{self.location}: {what}: authentication failed: check {self.auth.keys}")
            if status in TRANSIENT_STATUS or status == 0:
                return TransientError(f"{self.location}: {what}: {exc.msg} {status or ''}".rstrip())
            return StorageError(f"{self.location}: {what}: {exc.msg} {status}")
        if isinstance(exc, OSError | urllib3.exceptions.HTTPError):  # lost connections, bodies cut short
            return TransientError(f"{self.location}: {what}: {type(exc).__name__}: {exc}")
        return exc

    def _ensure_container(self) -> None:
        if not self._container_checked:
            self._conn().put_container(self.container)  # idempotent: 201 or 202
            self._container_checked = True

    def put(self, name: str, source: Source) -> None:
        self._put(name, source, {})

    def put_if_absent(self, name: str, source: Source) -> bool:
        """Create `name` only if absent (If-None-Match: *, answered 412); False when it already existed.

        Not atomic against a concurrent create of the same name: the server checks when the upload starts.
        """
        try:
            self._put(name, source, {"If-None-Match": "*"})
            return True
        except _Exists:
            return False

    def _put(self, name: str, source: Source, headers: dict[str, str]) -> None:
        try:
            self._ensure_container()
            if isinstance(source, bytes | bytearray | memoryview):
                self._conn().put_object(self.container, self._key(name), contents=bytes(source), headers=headers)
            else:
                self._conn().put_object(self.container, self._key(name), contents=source, headers=headers,
                                        chunk_size=1 << 20)
        except self._client_error as exc:
            if exc.http_status == 412 and headers:
                raise _Exists(name) from exc
            raise self._map(exc, f"put {name}", name) from exc
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        headers = {}
        if length == 0:
            if not self.exists(name):
                raise ObjectNotFound(self.location, name)
            return b""
        if length is not None:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            _, body = self._conn().get_object(self.container, self._key(name), headers=headers)
            return bytes(body)
        except Exception as exc:
            raise self._map(exc, f"get {name}", name) from exc

    def open(self, name: str) -> BinaryIO:
        try:
            _, body = self._conn().get_object(self.container, self._key(name), resp_chunk_size=1 << 20)
        except Exception as exc:
            raise self._map(exc, f"open {name}", name) from exc
        return chunk_stream(iter(body), getattr(body, "close", None))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Container GET pages of `list_page` names from a marker, each a parsed JSON list of names (in
        order, after the marker, under the prefix) and sizes; a page shorter than `list_page` is the last.
        A missing container (404) holds nothing. Anything else raises IncompleteListing."""
        import http.client

        base = f"{self.prefix}/" if self.prefix else ""
        wanted = base + prefix
        marker = ""
        while True:
            try:
                _, items = self._conn().get_container(self.container, prefix=wanted, marker=marker,
                                                      limit=self.list_page)
            except (ValueError, http.client.HTTPException) as exc:  # a body cut short or not JSON
                raise IncompleteListing(self.location, prefix, f"{type(exc).__name__}: {exc}") from exc
            except Exception as exc:
                status = getattr(exc, "http_status", None) if isinstance(exc, self._client_error) else None
                if status == 404 and not marker:
                    return
                raise IncompleteListing.or_error(self._map(exc, f"list {prefix}"), self.location, prefix,
                                                  cut=status == 404) from exc
            found = self._page(items, wanted, marker, prefix)
            yield from (ObjectInfo(name[len(base):], size) for name, size in found)
            if len(found) < self.list_page:
                return
            marker = found[-1][0]

    def _page(self, items: Any, wanted: str, marker: str, prefix: str) -> Sequence[tuple[str, int]]:
        """A page's (name, size) pairs once it proves whole: a JSON list of at most `list_page` entries,
        each a name under the prefix, after the marker and in order, with its byte count."""

        def incomplete(reason: str) -> IncompleteListing:
            return IncompleteListing(self.location, prefix, reason)

        if not isinstance(items, list) or len(items) > self.list_page:
            raise incomplete(f"the body is not a JSON list of at most {self.list_page} entries")
        out: list[tuple[str, int]] = []
        last = marker
        for item in items:
            name = item.get("name") if isinstance(item, dict) else None
            size = item.get("bytes") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name.startswith(wanted) or not isinstance(size, int):
                raise incomplete(f"entry {str(item)[:80]!r} is not a name under the prefix and a size")
            if name <= last:
                raise incomplete(f"entry {name!r} is out of order")
            out.append((name, size))
            last = name
        return out

    def delete(self, name: str) -> None:
        try:
            self._conn().delete_object(self.container, self._key(name))
        except Exception as exc:
            raise self._map(exc, f"delete {name}", name) from exc

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Nothing to remove: each object is one PUT (no segments), so an interrupted write leaves nothing."""
        return []

    def exists(self, name: str) -> bool:
        try:
            self._conn().head_object(self.container, self._key(name))
            return True
        except Exception as exc:
            mapped = self._map(exc, f"exists {name}", name)
            if isinstance(mapped, ObjectNotFound):
                return False
            raise mapped from exc


class _Exists(Exception):
    """If-None-Match: * failed: the object is already there."""


def swift_storage(spec: Mapping[str, Any], secret: Mapping[str, str], ca_file: str | None) -> SwiftStorage:
    """Stash's `spec.backend.swift` (container, prefix) with its storage Secret."""
    return SwiftStorage(str(spec.get("container") or ""), str(spec.get("prefix") or ""),
                        SwiftAuth.from_secret(secret), cacert=ca_file)
