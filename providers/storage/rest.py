"""The `rest` backend: restic's REST protocol v2 (rest-server), over HTTP(S) with optional basic auth.

The protocol stores restic's object kinds only: `config`, `data/<2 hex>/<64 hex>` (sent as `/data/<64 hex>`),
and `index|keys|locks|snapshots/<64 hex>`; other names are refused. The server refuses to overwrite, so
replacing an object is delete + create (not atomic on this backend). rest-server checks that a name is the
SHA-256 of the content unless started with `--no-verify-upload`, which stashplan repositories need.
A listing counts when every kind answered a v2 JSON list of names and sizes that parsed; the protocol
has no count, so entries dropped from a well-formed answer cannot be seen here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from providers.storage.base import (
    IncompleteListing,
    ObjectInfo,
    ObjectNotFound,
    Source,
    StorageError,
    as_bytes,
    check_name,
)
from providers.storage.streams import chunk_stream
from stashplan.errors import TransientError, redact_urls

V2 = "application/vnd.x.restic.rest.v2"
KINDS = ("data", "index", "keys", "locks", "snapshots")
_HEX64 = re.compile(r"[0-9a-f]{64}")
CREDENTIAL_KEYS = "REST_SERVER_USERNAME/REST_SERVER_PASSWORD"


class RestStorage:
    """A repository on a rest-server at `url` (its path is the repository). Sessions are per thread."""

    def __init__(
        self, url: str, *, username: str = "", password: str = "", ca_file: str | None = None,
        connections: int = 8, timeout: float = 60.0,
    ) -> None:  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StorageError(f"rest: url {redact_urls(url)!r}: expected http(s)://host[:port]/path/")
        username = username or (parts.username or "")
        password = password or (parts.password or "")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/", "", ""))
        self._auth = (username, password) if username or password else None
        self._verify: bool | str = ca_file or True
        self._connections = max(1, connections)
        self._timeout = timeout
        self._local = threading.local()

    @property
    def location(self) -> str:
        return f"rest:{self.base}"

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=self._connections, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.auth = self._auth
            session.verify = self._verify
            self._local.session = session
        return session

    def _path(self, name: str) -> str:
        check_name(name)
        if name == "config":
            return "config"
        parts = name.split("/")
        kind, last = parts[0], parts[-1]
        ok = kind in KINDS and _HEX64.fullmatch(last) is not None
        if kind == "data":
            ok = ok and len(parts) == 3 and parts[1] == last[:2]
        else:
            ok = ok and len(parts) == 2
        if not ok:
            raise StorageError(
                f"{self.location}: the REST protocol cannot store {name!r} (it holds config, "
                "data/<2 hex>/<64 hex> and index|keys|locks|snapshots/<64 hex>)"
            )
        return f"{kind}/{last}"

    def _request(self, method: str, path: str, what: str, name: str = "", **kw: Any) -> requests.Response:
        try:
            resp = self._session().request(method, self.base + quote(path), timeout=self._timeout, **kw)
        except requests.exceptions.SSLError as exc:
            raise StorageError(f"{self.location}: {what}: TLS verification failed (give the CA in CA_CERT_DATA)") from exc
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"{self.location}: {what}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code < 300:
            return resp
        resp.close()
        raise self._error(resp.status_code, what, name)

    def _error(self, status: int, what: str, name: str) -> Exception:
        if status == 404 and name:
            return ObjectNotFound(self.location, name)
        if status == 401:
            return StorageError(f"{self.location}: {what}: HTTP 401: wrong or missing {CREDENTIAL_KEYS}")
        if status in (408, 429) or (status >= 500 and status != 507):
            return TransientError(f"{self.location}: {what}: HTTP {status}")
        return StorageError(f"{self.location}: {what}: HTTP {status}")

    def _create_repository(self) -> None:
        self._request("POST", "", "create repository", params={"create": "true"})

    def put(self, name: str, source: Source) -> None:
        path = self._path(name)
        data = as_bytes(source)
        if name == "config":
            self._create_repository()
        if not self._post(path, data, name):  # the server never overwrites: replace is delete + create
            self._request("DELETE", path, f"replace {name}", name)
            if not self._post(path, data, name):
                raise TransientError(f"{self.location}: put {name}: another writer created it meanwhile")

    def put_if_absent(self, name: str, source: Source) -> bool:
        """Create `name` only if absent (the server refuses to overwrite: 403); False when it existed.

        Not atomic against a concurrent create of the same name: the server checks when the upload starts.
        """
        path = self._path(name)
        if name == "config":
            self._create_repository()
        return self._post(path, as_bytes(source), name)

    def _post(self, path: str, data: bytes | bytearray | memoryview, name: str) -> bool:
        try:
            self._request("POST", path, f"put {name}", name, data=data,
                          headers={"Content-Type": "application/octet-stream"})
            return True
        except StorageError as exc:
            if "HTTP 403" in str(exc) and self._exists(path, name):
                return False
            raise

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        headers = {}
        if length is not None:
            if length == 0:
                self._request("HEAD", self._path(name), f"get {name}", name)
                return b""
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        resp = self._request("GET", self._path(name), f"get {name}", name, headers=headers)
        return resp.content

    def open(self, name: str) -> BinaryIO:
        resp = self._request("GET", self._path(name), f"open {name}", name, stream=True)
        return chunk_stream(resp.iter_content(1 << 20), resp.close)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if "config".startswith(prefix) or prefix.startswith("config"):
            try:
                resp = self._request("HEAD", "config", "list config", "config")
                if "config".startswith(prefix):
                    yield ObjectInfo("config", int(resp.headers.get("Content-Length", 0)))
            except ObjectNotFound:
                pass
        for kind in KINDS:
            if not (kind + "/").startswith(prefix) and not prefix.startswith(kind + "/"):
                continue
            for blob, size in self._list_kind(kind, prefix):
                full = f"data/{blob[:2]}/{blob}" if kind == "data" else f"{kind}/{blob}"
                if full.startswith(prefix):
                    yield ObjectInfo(full, size)

    def _list_kind(self, kind: str, prefix: str) -> Sequence[tuple[str, int]]:
        """One kind's (name, size) pairs from a v2 answer that parsed whole; else IncompleteListing."""

        def incomplete(reason: str) -> IncompleteListing:
            return IncompleteListing(self.location, prefix, f"{kind}/: {reason}")

        try:
            resp = self._request("GET", kind + "/", f"list {kind}/", "-", headers={"Accept": V2})
        except ObjectNotFound:
            if self._exists("config", "config"):  # a created repository has every kind's directory
                raise incomplete("HTTP 404 in a repository that exists") from None
            return []
        except TransientError as exc:
            raise incomplete(str(exc).removeprefix(f"{self.location}: list {kind}/: ")) from exc
        media = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if media != V2:
            raise incomplete(f"the answer is {media or 'untyped'}, not the v2 listing")
        try:
            items = resp.json()
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise incomplete(f"the body ({len(resp.content)} bytes) is not a JSON list")
        out = []
        for item in items:
            name = item.get("name") if isinstance(item, dict) else None
            size = item.get("size") if isinstance(item, dict) else None
            if not isinstance(name, str) or not _HEX64.fullmatch(name) or not isinstance(size, int) or size < 0:
                raise incomplete(f"entry {str(item)[:80]!r} is not a name and size")
            out.append((name, size))
        return out

    def delete(self, name: str) -> None:
        path = self._path(name)
        if not self._exists(path, name):  # rest-server answers 200 for a missing object
            raise ObjectNotFound(self.location, name)
        self._request("DELETE", path, f"delete {name}", name)

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Nothing a client can remove: rest-server writes a temp file and renames it, on its own disk."""
        return []

    def exists(self, name: str) -> bool:
        return self._exists(self._path(name), name)

    def _exists(self, path: str, name: str) -> bool:
        try:
            self._request("HEAD", path, f"exists {name}", name)
            return True
        except ObjectNotFound:
            return False


def rest_storage(url: str, secret: Mapping[str, str], ca_file: str | None) -> RestStorage:
    """Stash's `spec.backend.rest.url` with REST_SERVER_USERNAME/REST_SERVER_PASSWORD from the Secret."""
    return RestStorage(
        url,
        username=secret.get("REST_SERVER_USERNAME", ""),
        password=secret.get("REST_SERVER_PASSWORD", ""),
        ca_file=ca_file,
    )
