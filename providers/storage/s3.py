"""The `s3` backend (boto3): AWS S3, MinIO, Ceph...; errors mapped to TransientError/ObjectNotFound/StorageError.
A listing counts only when every ListObjectsV2 page parsed, echoed the bucket and prefix, held KeyCount
entries, and the last said IsTruncated false; anything else raises IncompleteListing."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from stashplan.errors import TransientError, redact_urls

TRANSIENT_CODES = {
    "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
    "InternalError", "ServiceUnavailable", "RequestLimitExceeded", "TooManyRequests",
}  # fmt: skip
NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}
# A conditional write racing another on the same key: AWS answers 409; retrying then gives 412.
CONFLICT_CODES = {"ConditionalRequestConflict"}
LIST_PAGE = 1000  # MaxKeys of each ListObjectsV2 request (S3's own maximum)


@dataclass(frozen=True)
class S3Settings:
    """Stash's `spec.backend.s3` fields plus credentials; `endpoint` is a URL with scheme."""

    endpoint: str
    bucket: str
    prefix: str = ""
    region: str = ""
    insecure_tls: bool = False
    ca_cert_data: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""

    @property
    def location(self) -> str:
        where = f"s3:{self.endpoint.rstrip('/')}/{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        return redact_urls(where)  # never a password given in the URL


def settings_from_env(
    endpoint: str, bucket: str, prefix: str, env: Mapping[str, str], **extra: Any
) -> S3Settings:
    """Settings with credentials, region and CA bundle taken from `env` (a Secret's data or os.environ)."""
    return S3Settings(
        endpoint=endpoint,
        bucket=bucket,
        prefix=prefix.strip("/"),
        region=extra.get("region") or env.get("AWS_DEFAULT_REGION", "") or env.get("AWS_REGION", ""),
        insecure_tls=bool(extra.get("insecure_tls", False)),
        ca_cert_data=env.get("CA_CERT_DATA", ""),
        access_key_id=env.get("AWS_ACCESS_KEY_ID", ""),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
    )


class S3Storage:
    """Objects under `<prefix>/` in one bucket. boto3's own retries are off: RetryingStorage retries."""

    def __init__(self, settings: S3Settings) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.list_page = LIST_PAGE
        verify: bool | str = True
        if settings.insecure_tls:
            import urllib3

            verify = False  # asked for explicitly (Stash's insecureTLS): do not warn on every request
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        elif settings.ca_cert_data:
            self._ca_file = tempfile.NamedTemporaryFile("w", suffix=".crt", prefix="stashplan-ca-")  # noqa: SIM115 (lives with the client)
            self._ca_file.write(settings.ca_cert_data)
            self._ca_file.flush()
            verify = self._ca_file.name
        creds: dict[str, str] = {}
        if settings.access_key_id and settings.secret_access_key:
            creds = {
                "aws_access_key_id": settings.access_key_id,
                "aws_secret_access_key": settings.secret_access_key,
            }
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            s3={"addressing_style": "path"},
            max_pool_connections=16,
            connect_timeout=10,
            read_timeout=60,
        )
        session = boto3.session.Session()
        self._client = session.client(
            "s3",
            endpoint_url=settings.endpoint or None,
            region_name=settings.region or "us-east-1",
            verify=verify,
            config=config,
            **creds,
        )
        from botocore.exceptions import BotoCoreError, ClientError, SSLError

        self._client_error = ClientError
        self._core_error = BotoCoreError
        self._ssl_error = SSLError

    @property
    def location(self) -> str:
        return self.settings.location

    def _key(self, name: str) -> str:
        check_name(name)
        return f"{self.settings.prefix}/{name}" if self.settings.prefix else name

    def _map(self, exc: Exception, what: str, name: str = "") -> Exception:
        if isinstance(exc, self._client_error):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in NOT_FOUND_CODES or (status == 404 and code != "NoSuchBucket"):
                return ObjectNotFound(self.location, name)
            if code in TRANSIENT_CODES or code in CONFLICT_CODES or status >= 500 or status == 429:
                return TransientError(f"{self.location}: {what}: {code or status}")
            return StorageError(f"{self.location}: {what}: {code} {err.get('Message', '')}".rstrip())
        if isinstance(exc, self._ssl_error):
            return StorageError(
                f"{self.location}: {what}: TLS verification failed (give the CA in CA_CERT_DATA or set insecureTLS)"
            )
        if isinstance(exc, self._core_error):
            return TransientError(f"{self.location}: {what}: {type(exc).__name__}: {exc}")
        return exc

    def put(self, name: str, source: Source) -> None:
        key = self._key(name)
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                self._client.put_object(Bucket=self.settings.bucket, Key=key, Body=bytes(source))
            else:
                self._client.upload_fileobj(source, self.settings.bucket, key)
        except Exception as exc:
            raise self._map(exc, f"put {name}", name) from exc

    def put_if_absent(self, name: str, source: Source) -> bool:
        key = self._key(name)
        try:
            self._client.put_object(
                Bucket=self.settings.bucket, Key=key, Body=bytes(as_bytes(source)), IfNoneMatch="*"
            )
            return True
        except self._client_error as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "PreconditionFailed" or status == 412:
                return False
            raise self._map(exc, f"put_if_absent {name}", name) from exc
        except Exception as exc:
            raise self._map(exc, f"put_if_absent {name}", name) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": self._key(name)}
        if length is not None:
            if length == 0:
                if not self.exists(name):  # a missing object is ObjectNotFound even for an empty range
                    raise ObjectNotFound(self.location, name)
                return b""
            kwargs["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            body = self._client.get_object(**kwargs)["Body"]
            with body:
                data: bytes = body.read()
                return data
        except Exception as exc:
            raise self._map(exc, f"get {name}", name) from exc

    def open(self, name: str) -> BinaryIO:
        try:
            body = self._client.get_object(Bucket=self.settings.bucket, Key=self._key(name))["Body"]
            return body  # type: ignore[no-any-return]
        except Exception as exc:
            raise self._map(exc, f"open {name}", name) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 pages, each checked (`_page`), followed by continuation token to the last one."""
        base = f"{self.settings.prefix}/" if self.settings.prefix else ""
        kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Prefix": base + prefix, "MaxKeys": self.list_page}
        tokens: set[str] = set()
        while True:
            try:
                page = self._client.list_objects_v2(**kwargs)
            except Exception as exc:  # a body cut short, unparseable XML, a lost connection, 5xx
                mapped = self._map(exc, f"list {prefix}")
                if isinstance(mapped, TransientError) or self._parser_error(exc):
                    raise IncompleteListing(self.location, prefix, self._list_failure(exc)) from exc
                raise mapped from exc
            items, token = self._page(page, base, prefix)
            yield from items
            if token is None:
                return
            if token in tokens:
                raise IncompleteListing(self.location, prefix, "the continuation token came back again")
            tokens.add(token)
            kwargs["ContinuationToken"] = token

    def _list_failure(self, exc: Exception) -> str:
        if not isinstance(exc, self._client_error):
            return f"{type(exc).__name__}: {exc}"
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("", str(status)):  # botocore turns a 200 whose XML does not parse into a bare 500
            return f"HTTP {status} without an S3 error code (a body cut short or not XML reads so)"
        return f"{code} (HTTP {status})"

    def _parser_error(self, exc: Exception) -> bool:
        from botocore.parsers import ResponseParserError

        return isinstance(exc, ResponseParserError)

    def _page(self, page: Mapping[str, Any], base: str, prefix: str) -> tuple[Sequence[ObjectInfo], str | None]:
        """A page's objects and the next page's token (None after the last), once the page proves whole:
        a parsed body (Name, KeyCount, IsTruncated), our bucket and prefix echoed, KeyCount equal to the
        entries, every key under the prefix, and a NextContinuationToken whenever IsTruncated."""

        def incomplete(reason: str) -> IncompleteListing:
            return IncompleteListing(self.location, prefix, reason)

        missing = [f for f in ("Name", "KeyCount", "IsTruncated") if f not in page]
        if missing:
            raise incomplete(f"no ListBucketResult in the response body ({', '.join(missing)} missing)")
        if page["Name"] != self.settings.bucket:
            raise incomplete(f"the response is for bucket {page['Name']!r}, not {self.settings.bucket!r}")
        if page.get("Prefix", "") != base + prefix:
            raise incomplete(f"the response echoes prefix {page.get('Prefix')!r}, not {base + prefix!r}")
        contents = page.get("Contents", [])
        entries = len(contents) + len(page.get("CommonPrefixes", []))
        if int(page["KeyCount"]) != entries:
            raise incomplete(f"KeyCount is {page['KeyCount']} but the body holds {entries} entries")
        items = []
        for item in contents:
            key = str(item.get("Key", ""))
            if not key.startswith(base + prefix) or "Size" not in item:
                raise incomplete(f"entry {key!r} is outside the prefix or has no Size")
            items.append(ObjectInfo(key[len(base) :], int(item["Size"])))
        if not page["IsTruncated"]:
            return items, None
        token = page.get("NextContinuationToken")
        if not token:
            raise incomplete("IsTruncated without a NextContinuationToken")
        return items, str(token)

    def delete(self, name: str) -> None:
        if not self.exists(name):
            raise ObjectNotFound(self.location, name)
        try:
            self._client.delete_object(Bucket=self.settings.bucket, Key=self._key(name))
        except Exception as exc:
            raise self._map(exc, f"delete {name}", name) from exc

    def make_bucket(self) -> bool:
        """Create the bucket when HeadBucket says 404 (MakesBucket). A denied HeadBucket is taken as "it exists",
        as restic does; a denied CreateBucket names s3:CreateBucket."""
        bucket = self.settings.bucket
        try:
            self._client.head_bucket(Bucket=bucket)
            return False
        except self._client_error as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if status == 403:
                return False
            if status != 404:
                raise self._map(exc, f"check bucket {bucket}") from exc
        except Exception as exc:
            raise self._map(exc, f"check bucket {bucket}") from exc
        region = self.settings.region
        extra = {"CreateBucketConfiguration": {"LocationConstraint": region}} if region not in ("", "us-east-1") else {}
        try:
            self._client.create_bucket(Bucket=bucket, **extra)
            return True
        except self._client_error as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "BucketAlreadyOwnedByYou":
                return False  # another init made it a moment ago
            if code == "AccessDenied" or status == 403:
                raise StorageError(f"{self.location}: bucket {bucket} does not exist and these credentials may not "
                                   "create it (CreateBucket: AccessDenied): grant s3:CreateBucket, or create "
                                   "the bucket") from None
            if code == "BucketAlreadyExists":
                raise StorageError(f"{self.location}: bucket {bucket} does not exist for these credentials, and "
                                   "its name is taken by another account") from None
            raise self._map(exc, f"create bucket {bucket}") from exc
        except Exception as exc:
            raise self._map(exc, f"create bucket {bucket}") from exc

    def exists(self, name: str) -> bool:
        try:
            self._client.head_object(Bucket=self.settings.bucket, Key=self._key(name))
            return True
        except Exception as exc:
            mapped = self._map(exc, f"exists {name}", name)
            if isinstance(mapped, ObjectNotFound):
                return False
            raise mapped from exc

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Aborts multipart uploads under the prefix started more than `older_than` seconds ago."""
        base = f"{self.settings.prefix}/" if self.settings.prefix else ""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        removed = []
        try:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.settings.bucket, Prefix=base
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < cutoff:
                        self._client.abort_multipart_upload(
                            Bucket=self.settings.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        removed.append(f"{upload['Key'][len(base):]} (upload {upload['UploadId']})")
        except Exception as exc:
            raise self._map(exc, "remove leftovers") from exc
        return removed
