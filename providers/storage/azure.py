"""The `azure` backend (azure-storage-blob): block blobs under `<prefix>/` in one container.

Secret keys: AZURE_ACCOUNT_NAME, AZURE_ACCOUNT_KEY, and AZURE_ENDPOINT (the blob service URL, e.g.
`http://127.0.0.1:10000/devstoreaccount1` for Azurite or a sovereign cloud's). The SDK's retries are off:
RetryingStorage retries. Large blobs go up and down in `connections` parallel blocks. A listing counts
when every page parsed and echoed our container and prefix; the XML carries no count, so entries dropped
from a well-formed page cannot be seen here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

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

NAME, KEY = "AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_KEY"
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
LIST_PAGE = 5000  # maxresults of each List Blobs request (Azure's own maximum)


class AzureStorage:
    """One container (and prefix); the container client is thread-safe and shared."""

    def __init__(self, container: str, prefix: str, secret: Mapping[str, str], *, connections: int = 4) -> None:
        from azure.core import exceptions as aexc
        from azure.storage.blob import BlobServiceClient

        account, key = secret.get(NAME, "").strip(), secret.get(KEY, "").strip()
        for field, value in ((NAME, account), (KEY, key)):
            if not value:
                raise StorageError(f"azure: the storage Secret has no {field}")
        try:
            base64.b64decode(key, validate=True)
        except binascii.Error as exc:
            raise StorageError(f"azure: {KEY} is not a base64 account key") from exc
        self.endpoint = (secret.get("AZURE_ENDPOINT", "").strip()
                         or f"https://{account}.blob.core.windows.net").rstrip("/")
        self.container = container
        self.prefix = prefix.strip("/")
        self.connections = max(1, connections)
        service = BlobServiceClient(
            self.endpoint, credential={"account_name": account, "account_key": key},
            retry_total=0, connection_timeout=20, read_timeout=120,
            max_single_put_size=8 << 20, max_block_size=4 << 20, max_single_get_size=8 << 20,
        )  # fmt: skip
        self._client = service.get_container_client(container)
        self.list_page = LIST_PAGE
        self._aexc = aexc

    @property
    def location(self) -> str:
        return f"azure:{self.endpoint}/{self.container}:/{self.prefix}"

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _map(self, exc: Exception, what: str, name: str = "") -> Exception:
        a = self._aexc
        if isinstance(exc, a.ClientAuthenticationError):
            return StorageError(f"{self.location}: {what}: authentication failed: check {NAME} and {KEY}")
        if isinstance(exc, a.ResourceNotFoundError):
            code = str(getattr(exc, "error_code", "") or "")
            if name and code != "ContainerNotFound":
                return ObjectNotFound(self.location, name)
            return StorageError(f"{self.location}: {what}: container {self.container} not found")
        if isinstance(exc, a.HttpResponseError):
            status = int(exc.status_code or 0)
            if status == 403:
                return StorageError(f"{self.location}: {what}: access denied (HTTP 403 {exc.error_code}): "
                                    f"check {NAME} and {KEY}")
            if status == 0:  # no whole response: the connection ended inside it
                return TransientError(f"{self.location}: {what}: {exc.message or 'no complete response'}")
            if status in TRANSIENT_STATUS:
                return TransientError(f"{self.location}: {what}: HTTP {status}")
            return StorageError(f"{self.location}: {what}: HTTP {status} {getattr(exc, 'error_code', '')}")
        if isinstance(exc, a.ServiceRequestError | a.ServiceResponseError):
            return TransientError(f"{self.location}: {what}: {type(exc).__name__}: {exc}")
        return exc

    def make_bucket(self) -> bool:
        """Create the container when it does not exist (MakesBucket). A denied look is taken as "it exists", as
        restic does; a denied creation names the permission (Microsoft.Storage/.../containers/write)."""
        a = self._aexc
        try:
            if self._client.exists():
                return False
        except a.HttpResponseError as exc:
            if exc.status_code == 403:
                return False
            raise self._map(exc, f"check container {self.container}") from exc
        except Exception as exc:
            raise self._map(exc, f"check container {self.container}") from exc
        try:
            self._client.create_container()
            return True
        except a.ResourceExistsError:
            return False  # another init made it a moment ago
        except a.HttpResponseError as exc:
            if exc.status_code == 403:
                raise StorageError(f"{self.location}: container {self.container} does not exist and these "
                                   "credentials may not create it (HTTP 403 "
                                   f"{exc.error_code}; needs Microsoft.Storage/storageAccounts/blobServices/"
                                   "containers/write): grant it, or create the container") from None
            raise self._map(exc, f"create container {self.container}") from exc
        except Exception as exc:
            raise self._map(exc, f"create container {self.container}") from exc

    def put(self, name: str, source: Source) -> None:
        try:
            self._client.upload_blob(self._key(name), _body(source), overwrite=True,
                                     max_concurrency=self.connections)
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc

    def put_if_absent(self, name: str, source: Source) -> bool:
        """Create `name` only if absent (If-None-Match: *); False when it already existed."""
        try:
            self._client.upload_blob(self._key(name), _body(source), overwrite=False,
                                     max_concurrency=self.connections)
            return True
        except self._aexc.ResourceExistsError:
            return False
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            if length == 0:
                self._client.get_blob_client(self._key(name)).get_blob_properties()
                return b""
            stream = self._client.download_blob(self._key(name), offset=offset if offset or length else None, length=length,
                                                max_concurrency=self.connections)
            data: bytes = stream.readall()
            return data
        except Exception as exc:
            raise self._map(exc, f"get {name}", name) from exc

    def open(self, name: str) -> BinaryIO:
        try:
            stream = self._client.download_blob(self._key(name))
        except Exception as exc:
            raise self._map(exc, f"open {name}", name) from exc
        return chunk_stream(iter(stream.chunks()))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """List Blobs pages, each a parsed EnumerationResults echoing our container and prefix, followed
        while a NextMarker comes; anything else raises IncompleteListing."""
        base = f"{self.prefix}/" if self.prefix else ""
        wanted = base + prefix
        pager = self._client.list_blobs(name_starts_with=wanted, results_per_page=self.list_page).by_page()
        while True:
            try:
                page = next(pager, None)
                blobs = [] if page is None else list(page)
            except AttributeError as exc:  # no body: the SDK deserialises it to None
                raise IncompleteListing(self.location, prefix, "the response has no body") from exc
            except self._aexc.DecodeError as exc:  # a body cut short
                raise IncompleteListing(self.location, prefix, "the body is not XML") from exc
            except Exception as exc:
                raise IncompleteListing.or_error(self._map(exc, f"list {prefix}"), self.location, prefix) from exc
            if page is None:
                return
            echoed = (getattr(pager, "container", None), getattr(pager, "prefix", None) or "")
            if echoed != (self.container, wanted):
                raise IncompleteListing(self.location, prefix, f"the response echoes {echoed}, not "
                                        f"{(self.container, wanted)}")
            found = []
            for item in blobs:
                if not str(item.name).startswith(wanted) or item.size is None:
                    raise IncompleteListing(self.location, prefix, f"entry {item.name!r} is outside it or sizeless")
                found.append(ObjectInfo(item.name[len(base):], int(item.size)))
            yield from found

    def delete(self, name: str) -> None:
        try:
            self._client.delete_blob(self._key(name))
        except Exception as exc:
            raise self._map(exc, f"delete {name}", name) from exc

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Nothing to remove: blocks of an unfinished upload are never committed, and Azure discards them."""
        return []

    def exists(self, name: str) -> bool:
        try:
            return bool(self._client.get_blob_client(self._key(name)).exists())
        except Exception as exc:
            raise self._map(exc, f"exists {name}", name) from exc


def _body(source: Source) -> Any:
    return bytes(source) if isinstance(source, bytearray | memoryview) else source


def azure_storage(spec: Mapping[str, Any], secret: Mapping[str, str]) -> AzureStorage:
    """Stash's `spec.backend.azure` (container, prefix, maxConnections) with its storage Secret."""
    return AzureStorage(str(spec.get("container") or ""), str(spec.get("prefix") or ""), secret,
                        connections=int(spec.get("maxConnections") or 4))
