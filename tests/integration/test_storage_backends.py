"""What a user of each remote backend notices beyond the contract: a one-line error naming the Secret key when
credentials are missing or wrong, transient failures retried by the shared wrapper, create-if-absent, and
restic's repository strings (`gs:bucket:/prefix` ...) opening the same place as a Repository's spec."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from providers.storage import RetryingStorage, StorageError, open_storage
from stashplan.errors import TransientError
from tests.servers import StorageTarget, free_port

NAME = f"snapshots/{hashlib.sha256(b'x').hexdigest()}"


def _target(request: pytest.FixtureRequest, provider: str) -> StorageTarget:
    target: StorageTarget = request.getfixturevalue(f"{provider}_target")
    return target


@pytest.mark.parametrize(
    ("provider", "drop", "named"),
    [
        ("gcs", "GOOGLE_PROJECT_ID", "GOOGLE_PROJECT_ID"),
        ("gcs", "GCS_ENDPOINT", "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"),
        ("azure", "AZURE_ACCOUNT_KEY", "AZURE_ACCOUNT_KEY"),
        ("azure", "AZURE_ACCOUNT_NAME", "AZURE_ACCOUNT_NAME"),
        ("swift", "ST_KEY", "ST_KEY"),
        ("b2", "B2_ACCOUNT_KEY", "B2_ACCOUNT_KEY"),
        ("b2", "B2_ACCOUNT_ID", "B2_ACCOUNT_ID"),
    ],
)
def test_a_missing_secret_key_is_one_line_naming_it(
    request: pytest.FixtureRequest, provider: str, drop: str, named: str
) -> None:
    target = _target(request, provider)
    secret = {k: v for k, v in target.secret.items() if k != drop}
    with pytest.raises(StorageError, match=named) as info:
        target.storage("missing", secret).put(NAME, b"x")
    assert "\n" not in str(info.value)
    assert f"spec.backend.{provider}" in str(info.value)


@pytest.mark.parametrize(
    ("provider", "key", "wrong", "named"),
    [
        ("gcs", "GOOGLE_SERVICE_ACCOUNT_JSON_KEY", '{"type": "service_account"}', "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"),
        ("azure", "AZURE_ACCOUNT_KEY", "bm90LXRoZS1rZXk=", "AZURE_ACCOUNT_KEY"),
        ("azure", "AZURE_ACCOUNT_KEY", "not base64!", "AZURE_ACCOUNT_KEY"),
        ("swift", "ST_KEY", "not-the-key", "ST_KEY"),
        ("b2", "B2_ACCOUNT_KEY", "not-the-key", "B2_ACCOUNT_KEY"),
        ("rest", "REST_SERVER_PASSWORD", "not-the-password", "REST_SERVER_PASSWORD"),
    ],
)
def test_a_wrong_credential_is_one_line_naming_the_secret_key(
    request: pytest.FixtureRequest, provider: str, key: str, wrong: str, named: str
) -> None:
    target = _target(request, provider)
    with pytest.raises(StorageError, match=named) as info:
        target.storage(f"wrong/{uuid.uuid4().hex[:8]}", {**target.secret, key: wrong}).put(NAME, b"x")
    assert "\n" not in str(info.value)
    assert wrong not in str(info.value)


@pytest.mark.parametrize(
    ("provider", "endpoint_key"),
    [("gcs", "GCS_ENDPOINT"), ("azure", "AZURE_ENDPOINT"), ("swift", "ST_AUTH"), ("rest", "")],
)
def test_an_unreachable_endpoint_is_retried_by_the_shared_wrapper(
    request: pytest.FixtureRequest, provider: str, endpoint_key: str
) -> None:
    target = _target(request, provider)
    closed = f"http://127.0.0.1:{free_port()}"
    secret = dict(target.secret)
    if endpoint_key == "AZURE_ENDPOINT":
        secret[endpoint_key] = f"{closed}/{secret['AZURE_ACCOUNT_NAME']}"
    elif endpoint_key == "ST_AUTH":
        secret[endpoint_key] = f"{closed}/auth/v1.0"
    elif endpoint_key:
        secret[endpoint_key] = closed
    if provider == "rest":
        storage = target.storage_at({"url": f"{closed}/repo/"}, secret)
    else:
        storage = target.storage("unreachable", secret)
    assert isinstance(storage, RetryingStorage)
    sleeps: list[float] = []
    retrying = RetryingStorage(storage.inner, attempts=3, base_delay=0.01, sleep=sleeps.append)
    with pytest.raises(TransientError):
        retrying.put(NAME, b"x")
    assert len(sleeps) == 2  # three attempts, two waits


@pytest.mark.parametrize("provider", ["gcs", "azure", "swift", "b2", "rest"])
def test_put_if_absent_creates_once_and_never_overwrites(request: pytest.FixtureRequest, provider: str) -> None:
    storage = _target(request, provider).storage(f"cia/{uuid.uuid4().hex[:12]}").inner
    assert storage.put_if_absent(NAME, b"first") is True
    assert storage.put_if_absent(NAME, b"second") is False
    assert storage.get(NAME) == b"first"


@pytest.mark.parametrize(
    ("provider", "url"),
    [("gcs", "gs:stashplan-tests:/{p}"), ("azure", "azure:stashplan-tests:/{p}"),
     ("swift", "swift:stashplan-tests:/{p}"), ("b2", "b2:stashplan-tests:/{p}")],
)
def test_restic_repository_strings_open_the_same_place_as_the_spec(
    request: pytest.FixtureRequest, provider: str, url: str
) -> None:
    target = _target(request, provider)
    prefix = f"url/{uuid.uuid4().hex[:12]}"
    target.storage(prefix).put(NAME, b"same")
    assert open_storage(url.format(p=prefix), env=target.secret).get(NAME) == b"same"
