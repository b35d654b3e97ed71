"""Listings that lie: through a proxy that cuts response bodies between the client and the real server
(moto's S3 server, restic's rest-server), a listing whose body is missing, short, or holds fewer entries
than it claims raises a one-line IncompleteListing after the shared wrapper's retries, never a shorter list."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from providers.storage import IncompleteListing, RetryingStorage, Storage, open_storage
from tests.fixtures.cutting_proxy import Cut, CuttingProxy, Request, drop_s3_entries, rest_listing, s3_listing
from tests.fixtures.s3 import S3Bucket
from tests.servers import StorageTarget

ATTEMPTS = 3


def h(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


PACKS = [f"data/{h(str(n))[:2]}/{h(str(n))}" for n in range(5)]


def _retrying(storage: Storage, sleeps: list[float]) -> RetryingStorage:
    inner = storage.inner if isinstance(storage, RetryingStorage) else storage
    return RetryingStorage(inner, attempts=ATTEMPTS, base_delay=0.01, sleep=sleeps.append)


def _s3(bucket: S3Bucket, proxy: CuttingProxy) -> Storage:
    return open_storage(f"s3:{proxy.url()}/{bucket.name}/repo", env=bucket.endpoint.env())


def _rest(target: StorageTarget, proxy: CuttingProxy, path: str) -> Storage:
    return target.storage_at({"url": f"{proxy.url()}/{path}/"}, target.secret)


@pytest.fixture
def s3_through_proxy(
    s3_bucket: S3Bucket, cutting_proxy: Callable[[str], CuttingProxy]
) -> tuple[Storage, CuttingProxy]:
    proxy = cutting_proxy(s3_bucket.endpoint.url)
    storage = _s3(s3_bucket, proxy)
    for name in PACKS:
        storage.put(name, b"pack " + name.encode())
    return storage, proxy


@pytest.fixture
def rest_through_proxy(
    rest_target: StorageTarget, cutting_proxy: Callable[[str], CuttingProxy]
) -> tuple[Storage, CuttingProxy]:
    proxy = cutting_proxy(rest_target.backend("x")["rest"]["url"].rsplit("/x/", 1)[0])
    storage = _rest(rest_target, proxy, f"listing-{uuid.uuid4().hex[:12]}")
    storage.put("config", b"config")
    for name in PACKS:
        storage.put(name, b"pack " + name.encode())
    return storage, proxy


CUTS: list[Cut | Callable[[bytes], bytes]] = [Cut.CLOSE, Cut.EMPTY, Cut.SHORT]


def _assert_incomplete_after_retries(
    storage: Storage, proxy: CuttingProxy, matches: Callable[[Request], bool],
    cut: Cut | Callable[[bytes], bytes], reason: str,
) -> None:  # fmt: skip
    sleeps: list[float] = []
    retrying = _retrying(storage, sleeps)
    proxy.arm(matches, cut)
    with pytest.raises(IncompleteListing, match=reason) as info:
        list(retrying.list("data/"))
    message = str(info.value)
    assert "\n" not in message and "listing data/ is incomplete" in message
    assert proxy.cuts == ATTEMPTS and len(sleeps) == ATTEMPTS - 1  # transient: the wrapper listed again
    proxy.disarm()
    assert sorted(i.name for i in retrying.list("data/")) == sorted(PACKS)


@pytest.mark.parametrize(
    ("cut", "reason"),
    [
        (Cut.CLOSE, "no ListBucketResult in the response body"),  # botocore reads the missing body as empty
        (Cut.EMPTY, "no ListBucketResult in the response body"),
        (Cut.SHORT, "HTTP 500 without an S3 error code"),
        (drop_s3_entries, "KeyCount is 5 but the body holds 0 entries"),
    ],
    ids=["close", "empty", "short", "entries-dropped"],
)
def test_s3_listing_with_a_cut_body_raises_incomplete_after_retries(
    s3_through_proxy: tuple[Storage, CuttingProxy], cut: Cut | Callable[[bytes], bytes], reason: str
) -> None:
    storage, proxy = s3_through_proxy
    _assert_incomplete_after_retries(storage, proxy, s3_listing(), cut, reason)


def test_s3_listing_cut_once_is_listed_again_whole(s3_through_proxy: tuple[Storage, CuttingProxy]) -> None:
    storage, proxy = s3_through_proxy
    sleeps: list[float] = []
    proxy.arm(s3_listing(), Cut.EMPTY, times=1)
    assert sorted(i.name for i in _retrying(storage, sleeps).list("data/")) == sorted(PACKS)
    assert proxy.cuts == 1 and len(sleeps) == 1


def test_s3_listing_follows_every_page_and_a_cut_later_page_is_incomplete(
    s3_through_proxy: tuple[Storage, CuttingProxy],
) -> None:
    storage, proxy = s3_through_proxy
    inner = _retrying(storage, []).inner
    inner.list_page = 2  # type: ignore[attr-defined]
    assert sorted(i.name for i in inner.list("data/")) == sorted(PACKS)
    proxy.arm(lambda r: s3_listing()(r) and "continuation-token" in r.query, Cut.EMPTY)
    with pytest.raises(IncompleteListing, match="no ListBucketResult"):
        list(inner.list("data/"))
    assert proxy.cuts == 1
    # A page that says it is truncated but gives no token to go on is cut short, not the end.
    proxy.arm(s3_listing(), lambda body: body.replace(b"<NextContinuationToken>", b"<Token>")
              .replace(b"</NextContinuationToken>", b"</Token>"))
    with pytest.raises(IncompleteListing, match="IsTruncated without a NextContinuationToken"):
        list(inner.list("data/"))


@pytest.mark.parametrize(
    ("cut", "reason"),
    [(Cut.CLOSE, "Connection|IncompleteRead|closed"), (Cut.EMPTY, "not a JSON list"), (Cut.SHORT, "not a JSON list")],
    ids=["close", "empty", "short"],
)
def test_rest_listing_with_a_cut_body_raises_incomplete_after_retries(
    rest_through_proxy: tuple[Storage, CuttingProxy], cut: Cut, reason: str
) -> None:
    storage, proxy = rest_through_proxy
    _assert_incomplete_after_retries(storage, proxy, rest_listing("data"), cut, reason)


def _gcs_listing(req: Request) -> bool:
    return req.method == "GET" and req.path.startswith("/storage/v1/b/") and req.path.endswith("/o")


def _azure_listing(req: Request) -> bool:
    return req.method == "GET" and req.query.get("comp") == ["list"] and req.query.get("restype") == ["container"]


def _swift_listing(req: Request) -> bool:
    return req.method == "GET" and req.path.startswith("/v1/") and req.path.count("/") == 3


# Which Secret key names each emulated backend's endpoint (swift: tempauth hands out a storage URL on the
# host the client asked, so authenticating through the proxy keeps every later request on it).
ENDPOINTS = {"gcs": ("GCS_ENDPOINT", _gcs_listing), "azure": ("AZURE_ENDPOINT", _azure_listing),
             "swift": ("ST_AUTH", _swift_listing)}  # fmt: skip


@pytest.mark.parametrize("cut", [Cut.CLOSE, Cut.EMPTY, Cut.SHORT], ids=lambda c: c.value)
@pytest.mark.parametrize("provider", sorted(ENDPOINTS))
def test_emulated_backend_listing_with_a_cut_body_raises_incomplete_after_retries(
    request: pytest.FixtureRequest, cutting_proxy: Callable[[str], CuttingProxy], provider: str, cut: Cut
) -> None:
    target: StorageTarget = request.getfixturevalue(f"{provider}_target")
    key, matches = ENDPOINTS[provider]
    endpoint = urlsplit(target.secret[key])
    proxy = cutting_proxy(f"http://{endpoint.netloc}")
    secret = {**target.secret, key: target.secret[key].replace(endpoint.netloc, f"127.0.0.1:{proxy.port}")}
    storage = target.storage(f"listing/{uuid.uuid4().hex[:12]}", secret)
    for name in PACKS:
        storage.put(name, b"pack " + name.encode())
    _assert_incomplete_after_retries(storage, proxy, matches, cut, "is incomplete: ")
