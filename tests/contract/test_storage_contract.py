"""One contract suite for every storage backend: local, memory, s3 against a real moto server, gcs against
fake-gcs-server, azure against Azurite, swift against OpenStack Swift, rest against restic's rest-server,
and b2 against b2sdk's RawSimulator (the one allowed double). Names are restic-shaped, as the repository's:
`config`, `data/<2 hex>/<64 hex>`, `index|keys|locks|snapshots/<64 hex>`."""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.storage import MakesBucket, ObjectNotFound, RetryingStorage, Storage, open_storage
from providers.storage.local import LocalStorage
from providers.storage.memory import MemoryStorage
from tests.fixtures.s3 import S3Bucket
from tests.servers import StorageTarget

EMULATED = ["gcs", "azure", "swift", "b2", "rest"]


@pytest.fixture(params=["local", "memory", "s3", *EMULATED])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield open_storage(f"local:{tmp_path}/repo")
    elif request.param == "memory":
        yield MemoryStorage(f"contract-{id(tmp_path)}")
    elif request.param == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        yield open_storage(bucket.repo_url("some/prefix"), env=bucket.endpoint.env())
    else:
        target: StorageTarget = request.getfixturevalue(f"{request.param}_target")
        yield target.storage(f"contract/{uuid.uuid4().hex[:12]}")


def h(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def data(seed: str) -> str:
    """A pack's name as the repository writes it: data/<2 hex>/<64 hex>."""
    return f"data/{h(seed)[:2]}/{h(seed)}"


def test_put_then_get_returns_the_same_bytes(storage: Storage) -> None:
    storage.put("config", b"hello")
    assert storage.get("config") == b"hello"
    assert storage.exists("config")


def test_put_from_a_stream_reads_it_to_eof(storage: Storage) -> None:
    payload = bytes(range(256)) * 4096
    storage.put(data("stream"), io.BytesIO(payload))
    assert storage.get(data("stream")) == payload
    with storage.open(data("stream")) as fh:
        assert fh.read() == payload


def test_make_bucket_where_the_bucket_exists_creates_nothing_and_keeps_objects(storage: Storage) -> None:
    """What every repository init runs first (restic creates a missing bucket): a no-op on an existing one."""
    storage.put("config", b"kept")
    if isinstance(storage, MakesBucket):
        assert storage.make_bucket() is False
    assert storage.get("config") == b"kept"


def test_get_with_offset_and_length_returns_that_range(storage: Storage) -> None:
    storage.put(data("pack"), bytes(range(100)))
    assert storage.get(data("pack"), 10, 5) == bytes(range(10, 15))
    assert storage.get(data("pack"), 0, 3) == bytes(range(3))
    assert storage.get(data("pack"), 95) == bytes(range(95, 100))
    assert storage.get(data("pack"), 0, 0) == b""


def test_put_replaces_an_existing_object_whole(storage: Storage) -> None:
    storage.put(f"locks/{h('a')}", b"old-and-longer")
    storage.put(f"locks/{h('a')}", b"new")
    assert storage.get(f"locks/{h('a')}") == b"new"


def test_missing_objects_raise_object_not_found(storage: Storage) -> None:
    nope = f"snapshots/{h('nope')}"
    with pytest.raises(ObjectNotFound, match=h("nope")):
        storage.get(nope)
    with pytest.raises(ObjectNotFound):
        storage.get(nope, 0, 0)
    with pytest.raises(ObjectNotFound):
        storage.open(nope)
    with pytest.raises(ObjectNotFound):
        storage.delete(nope)
    assert not storage.exists(nope)


def test_list_yields_names_and_sizes_under_a_prefix_only(storage: Storage) -> None:
    storage.put(data("one"), b"1")
    storage.put(data("two"), b"22")
    storage.put(f"index/{h('three')}", b"333")
    storage.put("config", b"4444")
    assert {(i.name, i.size) for i in storage.list("data/")} == {(data("one"), 1), (data("two"), 2)}
    assert {i.name for i in storage.list()} == {data("one"), data("two"), f"index/{h('three')}", "config"}
    assert {i.name for i in storage.list("index/")} == {f"index/{h('three')}"}
    assert list(storage.list("snapshots/")) == []


def test_list_follows_every_page_to_the_end(storage: Storage) -> None:
    """A listing is whole or an error: backends that list in pages (pages of 3 here) follow them all."""
    inner = storage.inner if isinstance(storage, RetryingStorage) else storage
    if hasattr(inner, "list_page"):
        inner.list_page = 3
    packs = {data(f"paged-{n}") for n in range(8)}
    for name in [*packs, f"index/{h('paged')}", "config"]:
        storage.put(name, b"x")
    assert {i.name for i in storage.list("data/")} == packs
    assert {i.name for i in storage.list()} == packs | {f"index/{h('paged')}", "config"}
    assert list(storage.list("snapshots/")) == []


def test_local_listing_of_an_unreadable_directory_is_an_error_not_empty(tmp_path: Path) -> None:
    from providers.storage import StorageError

    storage = LocalStorage(tmp_path / "repo")
    storage.put("data/aa/x", b"payload")
    (tmp_path / "repo" / "index").write_bytes(b"a file where the index directory belongs")
    (tmp_path / "repo" / "data" / "bb").symlink_to(tmp_path / "repo" / "data" / "bb")  # a loop: cannot be read
    for prefix, path, cause in (("index/", "repo/index", "Not a directory"),
                                ("data/", "repo/data/bb", "Too many levels of symbolic links")):
        with pytest.raises(StorageError, match=f"cannot list .*{path}: {cause}") as info:
            list(storage.list(prefix))
        assert "\n" not in str(info.value)
    assert list(storage.list("snapshots/")) == []  # a directory not made yet holds nothing


def test_delete_removes_the_object(storage: Storage) -> None:
    storage.put(f"index/{h('x')}", b"x")
    storage.delete(f"index/{h('x')}")
    assert not storage.exists(f"index/{h('x')}")
    assert [i.name for i in storage.list("index/")] == []


def test_unsafe_names_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.put("../escape", b"x")
    with pytest.raises(ValueError):
        storage.put("/abs", b"x")


def test_concurrent_puts_of_distinct_objects_all_land(storage: Storage) -> None:
    failures: list[BaseException] = []

    def put(n: int) -> None:
        try:
            storage.put(data(f"obj{n}"), bytes([n]) * 1000)
        except BaseException as exc:  # reported below, with its cause, instead of as a thread warning
            failures.append(exc)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(list(storage.list("data/"))) == 16


def test_local_put_leaves_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put("data/aa/x", b"payload")

    class Exploding(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
            raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        storage.put("data/aa/y", Exploding())  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "data" / "aa").iterdir()) == ["x"]
    assert not storage.exists("data/aa/y")


def test_put_if_absent_creates_once_and_never_overwrites(storage: Storage) -> None:
    assert storage.put_if_absent("config", b"first") is True
    assert storage.put_if_absent("config", io.BytesIO(b"second, longer")) is False
    assert storage.get("config") == b"first"
    assert [(i.name, i.size) for i in storage.list("config")] == [("config", 5)]
    with pytest.raises(ValueError):
        storage.put_if_absent("../escape", b"x")


def _race_put_if_absent(storage: Storage, name: str, writers: int) -> list[bytes]:
    """Payloads of the writers whose put_if_absent returned True, all started at once."""
    barrier = threading.Barrier(writers)
    won: list[bytes] = []

    def race(n: int) -> None:
        payload = f"writer {n} ".encode() * (n + 1)
        barrier.wait()
        if storage.put_if_absent(name, payload):
            won.append(payload)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


# Backends whose servers offer no atomic create-if-absent (README, "Storage backends"): put_if_absent there
# is the server's own conditional create, which checks before the upload and not at its end.
NOT_ATOMIC = {
    "swift": "Swift checks If-None-Match: * when a PUT starts; concurrent PUTs of one name can all pass",
    "rest": "rest-server checks for an existing file before writing its temp file, then renames over it",
    # Amazon S3 itself creates conditionally and atomically; the moto server the tests run checks the header
    # and then writes, so under load several racers win there (seen in the full suite): not testable here.
    "s3": "the moto test server checks If-None-Match: * before writing, not atomically (real S3 is atomic)",
}


def test_put_if_absent_racers_have_exactly_one_winner_whose_bytes_stay(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    provider = request.node.callspec.params["storage"]
    if provider in NOT_ATOMIC:
        pytest.skip(f"{provider}: no atomic create-if-absent: {NOT_ATOMIC[provider]}")
    for round_ in range(3):
        won = _race_put_if_absent(storage, f"keys/{h(f'race-{round_}')}", 8)
        assert len(won) == 1
        assert storage.get(f"keys/{h(f'race-{round_}')}") == won[0]


def test_remove_leftovers_never_touches_finished_objects(storage: Storage) -> None:
    storage.put(data("kept"), b"payload")
    storage.put_if_absent("config", b"c")
    storage.remove_leftovers(0)
    assert storage.get(data("kept")) == b"payload"
    assert storage.get("config") == b"c"


def test_local_files_are_private_and_leftover_temp_files_are_removed_when_old(tmp_path: Path) -> None:
    import os
    import time

    storage = LocalStorage(tmp_path / "repo")
    storage.put("data/aa/x", b"payload")
    storage.put_if_absent("keys/k", b"key")
    assert (tmp_path / "repo" / "data" / "aa" / "x").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "repo" / "keys" / "k").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "repo" / "data" / "aa").stat().st_mode & 0o777 == 0o700
    old = tmp_path / "repo" / "data" / "aa" / ".tmp-killedwriter"
    old.write_bytes(b"half a pack")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = tmp_path / "repo" / "data" / ".tmp-running"
    young.write_bytes(b"being written")
    assert storage.remove_leftovers(3600) == ["data/aa/.tmp-killedwriter"]
    assert not old.exists() and young.exists()
    assert storage.get("data/aa/x") == b"payload"


def test_local_disk_full_is_a_one_line_storage_error_and_leaves_no_temp_file(tmp_path: Path) -> None:
    import resource
    import signal

    from providers.storage import StorageError

    root = tmp_path / "repo"
    storage = LocalStorage(root)
    storage.put("data/aa/x", b"payload")
    # The kernel refuses writes past RLIMIT_FSIZE with EFBIG, as it refuses them on a full disk.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(StorageError, match=r"cannot write .*data/aa/big: File too large") as info:
            storage.put("data/aa/big", io.BytesIO(b"x" * (1 << 20)))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in (root / "data" / "aa").iterdir()) == ["x"]
    with pytest.raises(StorageError, match="below-a-file: Not a directory"):
        storage.put("data/aa/x/below-a-file", b"z")


def test_s3_unfinished_multipart_uploads_are_leftovers(s3_bucket: S3Bucket) -> None:
    client = s3_bucket.endpoint.client()
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key="p/data/aa/half")
    storage = open_storage(s3_bucket.repo_url("p"), env=s3_bucket.endpoint.env())
    # (moto reports every upload as initiated in 2010, so the age cut-off is not observable here)
    assert storage.remove_leftovers(0) == [f"data/aa/half (upload {upload['UploadId']})"]
    assert client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []
