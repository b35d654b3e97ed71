"""The `b2` backend (b2sdk): files under `<prefix>/` in one Backblaze B2 bucket.

Secret keys: B2_ACCOUNT_ID (the application key id) and B2_ACCOUNT_KEY, both required. A delete removes
every version of the file, so a deleted object is gone as on the other backends. b2sdk retries some
calls inside itself; what still fails transiently is raised as TransientError for RetryingStorage.
`RAW_API` is the seam for b2sdk's own RawSimulator in tests (no B2 server exists here); None is real B2.
A listing counts when every page parsed with its files in order and a nextFileName, null on the last;
no count comes with it, so entries dropped from a well-formed page cannot be seen here.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from providers.storage.base import (
    IncompleteListing,
    ObjectInfo,
    ObjectNotFound,
    Source,
    StorageError,
    as_bytes,
    check_name,
)
from stashplan.errors import TransientError

ID, KEY = "B2_ACCOUNT_ID", "B2_ACCOUNT_KEY"
RAW_API: Any = None  # tests: a callable returning b2sdk's RawSimulator (shared so state outlives one client)
_login_lock = threading.Lock()
LIST_PAGE = 1000  # maxFileCount of each b2_list_file_names call (one class C transaction per 1000)


class B2Storage:
    """One bucket (and prefix) through one authorised B2Api (thread-safe in b2sdk)."""

    def __init__(self, bucket: str, prefix: str, secret: Mapping[str, str], *, connections: int = 8) -> None:
        from b2sdk.v2 import B2Api, B2HttpApiConfig, InMemoryAccountInfo
        from b2sdk.v2 import exception as bexc

        key_id, key = secret.get(ID, "").strip(), secret.get(KEY, "").strip()
        for field, value in ((ID, key_id), (KEY, key)):
            if not value:
                raise StorageError(f"b2: the storage Secret has no {field}")
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self._e = bexc
        self.list_page = LIST_PAGE
        config = B2HttpApiConfig(_raw_api_class=RAW_API) if RAW_API is not None else B2HttpApiConfig()
        self._api = B2Api(InMemoryAccountInfo(), api_config=config, max_upload_workers=max(1, connections))
        try:
            with _login_lock:
                self._api.authorize_account("production", key_id, key)
            self._bucket = self._api.get_bucket_by_name(bucket)
        except Exception as exc:
            raise self._map(exc, "authorize") from exc

    @property
    def location(self) -> str:
        return f"b2:{self.bucket_name}:/{self.prefix}"

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.prefix}/{name}" if self.prefix else name

    def _map(self, exc: Exception, what: str, name: str = "") -> Exception:
        e = self._e
        if isinstance(exc, e.FileNotPresent) and name:
            return ObjectNotFound(self.location, name)
        if isinstance(exc, e.NonExistentBucket):
            return StorageError(f"{self.location}: {what}: bucket {self.bucket_name} not found")
        if isinstance(exc, e.Unauthorized | e.InvalidAuthToken | e.AccessDenied):
            return StorageError(f"{self.location}: {what}: authorization failed: check {ID} and {KEY}")
        if isinstance(exc, e.TransientErrorMixin | e.B2ConnectionError | e.ServiceError | e.TooManyRequests):
            return TransientError(f"{self.location}: {what}: {type(exc).__name__}: {exc}")
        if isinstance(exc, e.B2Error):
            return StorageError(f"{self.location}: {what}: {type(exc).__name__}: {exc}")
        return exc

    def put(self, name: str, source: Source) -> None:
        try:
            self._bucket.upload_bytes(bytes(as_bytes(source)), self._key(name))
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc

    def put_if_absent(self, name: str, source: Source) -> bool:
        """B2 has no conditional upload: check, upload, then keep the oldest version as the winner.

        After uploading, the versions of `name` are listed; if another version is older than ours,
        ours is deleted and False returned. Two writers racing both see the same oldest version.
        """
        key = self._key(name)
        if self.exists(name):
            return False
        try:
            mine = self._bucket.upload_bytes(bytes(as_bytes(source)), key)
            versions = [v for v, _ in self._bucket.ls(key, latest_only=False, folder_to_list_can_be_a_file=True)
                        if v.file_name == key]
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc
        oldest = min(versions, key=lambda v: (v.upload_timestamp, v.id_))
        if oldest.id_ == mine.id_:
            return True
        self._api.delete_file_version(mine.id_, key)
        return False

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            if length == 0:
                self._bucket.get_file_info_by_name(self._key(name))
                return b""
            range_ = None
            if offset or length is not None:
                end = self._size(name) - 1 if length is None else offset + length - 1
                if end < offset:
                    return b""
                range_ = (offset, end)
            out = io.BytesIO()
            self._bucket.download_file_by_name(self._key(name), range_=range_).save(out)
            return out.getvalue()
        except Exception as exc:
            raise self._map(exc, f"get {name}", name) from exc

    def _size(self, name: str) -> int:
        return int(self._bucket.get_file_info_by_name(self._key(name)).size)

    def open(self, name: str) -> BinaryIO:
        return io.BytesIO(self.get(name))  # whole object: B2 files here are packs of a few MB

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """b2_list_file_names pages from the prefix on, each a parsed object with a `files` list (at most a
        page of names under the prefix, in order, with sizes) and a `nextFileName` that moves forward,
        null after the last page; anything else raises IncompleteListing."""
        base = f"{self.prefix}/" if self.prefix else ""
        wanted = base + prefix
        start = wanted  # the first name that can match
        while True:
            try:
                answer = self._api.session.list_file_names(self._bucket.id_, start or None, self.list_page,
                                                           wanted or None)
            except ValueError as exc:  # a body cut short or not JSON
                raise IncompleteListing(self.location, prefix, f"the body is not JSON ({exc})") from exc
            except Exception as exc:
                raise IncompleteListing.or_error(self._map(exc, f"list {prefix}"), self.location, prefix) from exc
            found, following = self._page(answer, wanted, start, prefix)
            yield from (ObjectInfo(name[len(base):], size) for name, size in found)
            if following is None:
                return
            start = following

    def _page(self, answer: Any, wanted: str, start: str, prefix: str) -> tuple[Sequence[tuple[str, int]], str | None]:
        def incomplete(reason: str) -> IncompleteListing:
            return IncompleteListing(self.location, prefix, reason)

        if not isinstance(answer, dict) or not isinstance(answer.get("files"), list) or "nextFileName" not in answer:
            raise incomplete("the answer has no files list and nextFileName")
        files = answer["files"]
        if len(files) > self.list_page:
            raise incomplete(f"{len(files)} files in a page of {self.list_page}")
        out = []
        last = ""
        for item in files:
            name = item.get("fileName") if isinstance(item, dict) else None
            size = item.get("contentLength") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name.startswith(wanted) or not isinstance(size, int):
                raise incomplete(f"entry {str(item)[:80]!r} is not a name under the prefix and a size")
            if name < start or name <= last:
                raise incomplete(f"entry {name!r} is out of order")
            last = name
            if item.get("action", "upload") == "upload":  # not hide markers, folders, unfinished large files
                out.append((name, size))
        following = answer["nextFileName"]
        if following is not None and (not isinstance(following, str) or following <= start):
            raise incomplete(f"nextFileName {following!r} does not move past {start!r}")
        return out, following

    def delete(self, name: str) -> None:
        key = self._key(name)
        try:
            versions = [v for v, _ in self._bucket.ls(key, latest_only=False, folder_to_list_can_be_a_file=True)
                        if v.file_name == key]
            if not versions:
                raise ObjectNotFound(self.location, name)
            for version in versions:
                self._api.delete_file_version(version.id_, key)
        except ObjectNotFound:
            raise
        except Exception as exc:
            raise self._map(exc, f"delete {name}", name) from exc

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Cancels unfinished large-file uploads under the prefix started more than `older_than` seconds ago."""
        base = f"{self.prefix}/" if self.prefix else ""
        cutoff_ms = (time.time() - older_than) * 1000
        removed = []
        try:
            for unfinished in self._bucket.list_unfinished_large_files(prefix=base):
                if unfinished.upload_timestamp < cutoff_ms:
                    self._api.cancel_large_file(unfinished.file_id)
                    removed.append(f"{str(unfinished.file_name)[len(base):]} (large file {unfinished.file_id})")
        except Exception as exc:
            raise self._map(exc, "remove leftovers") from exc
        return removed

    def exists(self, name: str) -> bool:
        try:
            self._bucket.get_file_info_by_name(self._key(name))
            return True
        except Exception as exc:
            mapped = self._map(exc, f"exists {name}", name)
            if isinstance(mapped, ObjectNotFound):
                return False
            raise mapped from exc


def b2_storage(spec: Mapping[str, Any], secret: Mapping[str, str]) -> B2Storage:
    """Stash's `spec.backend.b2` (bucket, prefix, maxConnections) with its storage Secret."""
    return B2Storage(str(spec.get("bucket") or ""), str(spec.get("prefix") or ""), secret,
                     connections=int(spec.get("maxConnections") or 8))
