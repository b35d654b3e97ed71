"""The `gcs` backend (google-cloud-storage): objects under `<prefix>/` in one bucket.

Secret keys: GOOGLE_PROJECT_ID, GOOGLE_SERVICE_ACCOUNT_JSON_KEY (the service account's JSON key), and
GCS_ENDPOINT for emulators or sovereign clouds (there, without a key, requests go unauthenticated).
The library's own retries are off: RetryingStorage retries. A listing counts when every page parsed as
a `storage#objects` JSON object; JSON listings carry no count, so entries dropped from a well-formed
page cannot be seen here.
"""

from __future__ import annotations

import json
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

KEY = "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"
PROJECT = "GOOGLE_PROJECT_ID"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
READ_CHUNK = 8 << 20
LIST_PAGE = 1000  # maxResults of each objects.list request


def _credentials(secret: Mapping[str, str], endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.oauth2 import service_account

    raw = secret.get(KEY, "").strip()
    if not raw:
        if endpoint:
            return AnonymousCredentials()
        raise StorageError(f"gcs: the storage Secret has no {KEY} (a service account JSON key)")
    try:
        return service_account.Credentials.from_service_account_info(json.loads(raw), scopes=[SCOPE])
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"gcs: {KEY} is not a service account JSON key ({type(exc).__name__})") from exc


class GCSStorage:
    """One bucket (and prefix) through a shared, thread-safe client with a pool of `connections`."""

    def __init__(self, bucket: str, prefix: str, secret: Mapping[str, str], *, connections: int = 8) -> None:
        import requests
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import storage

        project = secret.get(PROJECT, "").strip()
        if not project:
            raise StorageError(f"gcs: the storage Secret has no {PROJECT}")
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = secret.get("GCS_ENDPOINT", "").strip().rstrip("/")
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        client = storage.Client(project=project, credentials=_credentials(secret, self.endpoint),
                                client_options=options)
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(1, connections), max_retries=0)
        client._http.mount("https://", adapter)
        client._http.mount("http://", adapter)
        self._client = client
        self._bucket = client.bucket(bucket)
        self.list_page = LIST_PAGE
        self._gexc = gexc
        self._auth_error = GoogleAuthError

    @property
    def location(self) -> str:
        where = f"{self.endpoint}/" if self.endpoint else ""
        return f"gs:{where}{self.bucket_name}:/{self.prefix}"

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _map(self, exc: Exception, what: str, name: str = "") -> Exception:
        import requests

        g = self._gexc
        if isinstance(exc, g.NotFound):
            if name:
                return ObjectNotFound(self.location, name)
            return StorageError(f"{self.location}: {what}: bucket {self.bucket_name} not found")
        if isinstance(exc, g.Unauthorized | g.Forbidden | self._auth_error):
            return StorageError(f"{self.location}: {what}: access denied: check {KEY} and {PROJECT} "
                                f"({type(exc).__name__})")
        if isinstance(exc, g.TooManyRequests | g.ServerError):
            return TransientError(f"{self.location}: {what}: {exc.code} {exc.message}")
        if isinstance(exc, g.GoogleAPICallError):
            return StorageError(f"{self.location}: {what}: {exc.code} {exc.message}")
        if isinstance(exc, requests.exceptions.RequestException | ConnectionError | TimeoutError):
            return TransientError(f"{self.location}: {what}: {type(exc).__name__}: {exc}")
        return exc

    def make_bucket(self) -> bool:
        """Create the bucket (in GOOGLE_PROJECT_ID) when it does not exist (MakesBucket). A denied look is taken as
        "it exists", as restic does; a denied creation names storage.buckets.create."""
        g = self._gexc
        try:
            if self._bucket.exists(retry=None):
                return False
        except g.Forbidden:
            return False
        except Exception as exc:
            raise self._map(exc, f"check bucket {self.bucket_name}") from exc
        try:
            self._client.create_bucket(self.bucket_name, retry=None)
            return True
        except g.Conflict:
            return False  # another init made it a moment ago
        except g.Forbidden:
            raise StorageError(f"{self.location}: bucket {self.bucket_name} does not exist and the service account "
                               "may not create it (storage.buckets.create denied): grant it, or create the "
                               "bucket") from None
        except Exception as exc:
            raise self._map(exc, f"create bucket {self.bucket_name}") from exc

    def put(self, name: str, source: Source) -> None:
        self._upload(name, source, None)

    def put_if_absent(self, name: str, source: Source) -> bool:
        """Create `name` only if absent (ifGenerationMatch=0); False when it already existed."""
        try:
            self._upload(name, source, 0)
            return True
        except _Exists:
            return False

    def _upload(self, name: str, source: Source, generation: int | None) -> None:
        blob = self._bucket.blob(self._key(name))
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                blob.upload_from_string(bytes(source), content_type="application/octet-stream",
                                        if_generation_match=generation, retry=None)
            else:
                blob.upload_from_file(source, content_type="application/octet-stream",
                                      if_generation_match=generation, retry=None)
        except self._gexc.PreconditionFailed as exc:
            raise _Exists(name) from exc
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        blob = self._bucket.blob(self._key(name))
        try:
            if length == 0:
                if not blob.exists(retry=None):
                    raise ObjectNotFound(self.location, name)
                return b""
            end = None if length is None else offset + length - 1
            data: bytes = blob.download_as_bytes(start=offset or None, end=end, retry=None,
                                                 checksum=None if offset or end is not None else "md5")
            return data
        except ObjectNotFound:
            raise
        except Exception as exc:
            raise self._map(exc, f"get {name}", name) from exc

    def open(self, name: str) -> BinaryIO:
        size = self._size(name)

        def chunks() -> Iterator[bytes]:
            for start in range(0, size, READ_CHUNK):
                yield self.get(name, start, min(READ_CHUNK, size - start))

        return chunk_stream(chunks())

    def _size(self, name: str) -> int:
        try:
            blob = self._bucket.get_blob(self._key(name), retry=None)
        except Exception as exc:
            raise self._map(exc, f"stat {name}", name) from exc
        if blob is None:
            raise ObjectNotFound(self.location, name)
        return int(blob.size or 0)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """objects.list pages, each a parsed `storage#objects` JSON object whose items lie under the prefix
        and have a size, followed while a nextPageToken comes; anything else raises IncompleteListing."""
        base = f"{self.prefix}/" if self.prefix else ""
        wanted = base + prefix
        pages = iter(self._bucket.list_blobs(prefix=wanted, page_size=self.list_page, retry=None).pages)
        while True:
            try:
                page = next(pages, None)
                blobs = [] if page is None else list(page)
            except AttributeError as exc:  # no body: the library hands back b"" where a dict belongs
                raise IncompleteListing(self.location, prefix, "the response has no body") from exc
            except ValueError as exc:  # a body cut short
                raise IncompleteListing(self.location, prefix, f"the body is not JSON ({exc})") from exc
            except Exception as exc:
                raise IncompleteListing.or_error(self._map(exc, f"list {prefix}"), self.location, prefix) from exc
            if page is None:
                return
            if not isinstance(page.raw_page, dict) or page.raw_page.get("kind") != "storage#objects":
                raise IncompleteListing(self.location, prefix, "the response is not a storage#objects listing")
            found = []
            for blob in blobs:
                if not str(blob.name).startswith(wanted) or blob.size is None:
                    raise IncompleteListing(self.location, prefix, f"entry {blob.name!r} is outside it or sizeless")
                found.append(ObjectInfo(blob.name[len(base):], int(blob.size)))
            yield from found

    def delete(self, name: str) -> None:
        try:
            self._bucket.blob(self._key(name)).delete(retry=None)
        except Exception as exc:
            raise self._map(exc, f"delete {name}", name) from exc

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Nothing to remove: an unfinished upload never becomes an object, and GCS discards its session."""
        return []

    def exists(self, name: str) -> bool:
        try:
            return bool(self._bucket.blob(self._key(name)).exists(retry=None))
        except Exception as exc:
            raise self._map(exc, f"exists {name}", name) from exc


class _Exists(Exception):
    """ifGenerationMatch=0 failed: the object is already there."""


def gcs_storage(spec: Mapping[str, Any], secret: Mapping[str, str]) -> GCSStorage:
    """Stash's `spec.backend.gcs` (bucket, prefix, maxConnections) with its storage Secret."""
    return GCSStorage(str(spec.get("bucket") or ""), str(spec.get("prefix") or ""), secret,
                      connections=int(spec.get("maxConnections") or 8))
