"""One contract suite for every storage backend: local, memory, and s3 against a real moto server."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.storage import ObjectNotFound, Storage, open_storage
from providers.storage.local import LocalStorage
from providers.storage.memory import MemoryStorage
from tests.fixtures.s3 import S3Bucket


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield open_storage(f"local:{tmp_path}/repo")
    elif request.param == "memory":
        yield MemoryStorage(f"contract-{id(tmp_path)}")
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        yield open_storage(bucket.repo_url("some/prefix"), env=bucket.endpoint.env())


def test_put_then_get_returns_the_same_bytes(storage: Storage) -> None:
    storage.put("config", b"hello")
    assert storage.get("config") == b"hello"
    assert storage.exists("config")


def test_put_from_a_stream_reads_it_to_eof(storage: Storage) -> None:
    payload = bytes(range(256)) * 4096
    storage.put("data/ab/abcdef", io.BytesIO(payload))
    assert storage.get("data/ab/abcdef") == payload
    with storage.open("data/ab/abcdef") as fh:
        assert fh.read() == payload


def test_get_with_offset_and_length_returns_that_range(storage: Storage) -> None:
    storage.put("data/00/pack", bytes(range(100)))
    assert storage.get("data/00/pack", 10, 5) == bytes(range(10, 15))
    assert storage.get("data/00/pack", 95) == bytes(range(95, 100))
    assert storage.get("data/00/pack", 0, 0) == b""


def test_put_replaces_an_existing_object_whole(storage: Storage) -> None:
    storage.put("locks/a", b"old-and-longer")
    storage.put("locks/a", b"new")
    assert storage.get("locks/a") == b"new"


def test_missing_objects_raise_object_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFound, match="nope"):
        storage.get("snapshots/nope")
    with pytest.raises(ObjectNotFound):
        storage.open("snapshots/nope")
    with pytest.raises(ObjectNotFound):
        storage.delete("snapshots/nope")
    assert not storage.exists("snapshots/nope")


def test_list_yields_names_and_sizes_under_a_prefix_only(storage: Storage) -> None:
    storage.put("data/aa/one", b"1")
    storage.put("data/bb/two", b"22")
    storage.put("index/three", b"333")
    assert {(i.name, i.size) for i in storage.list("data/")} == {("data/aa/one", 1), ("data/bb/two", 2)}
    assert {i.name for i in storage.list()} == {"data/aa/one", "data/bb/two", "index/three"}
    assert list(storage.list("snapshots/")) == []


def test_delete_removes_the_object(storage: Storage) -> None:
    storage.put("index/x", b"x")
    storage.delete("index/x")
    assert not storage.exists("index/x")
    assert [i.name for i in storage.list("index/")] == []


def test_unsafe_names_are_refused(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.put("../escape", b"x")
    with pytest.raises(ValueError):
        storage.put("/abs", b"x")


def test_concurrent_puts_of_distinct_objects_all_land(storage: Storage) -> None:
    def put(n: int) -> None:
        storage.put(f"data/{n:02x}/obj{n}", bytes([n]) * 1000)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
