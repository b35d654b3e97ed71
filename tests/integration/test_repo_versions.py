"""Repository format versions: new repositories (version 4) use keyed BLAKE3 chunk ids and BLAKE3 object
names and stream checksums; version-1 repositories (HMAC-SHA256 ids) and version-3 ones (SHA-256 names) are
still read, backed up into in their own format, and checked."""

from __future__ import annotations

import hashlib
import hmac
import io
import random
from dataclasses import replace

import blake3
import pytest

from providers.storage import MemoryStorage
from stashplan.errors import RepositoryError
from stashplan.repository.layout import CONFIG, Params
from stashplan.repository.repo import Repository

SMALL = Params(chunk_min=16 * 1024, chunk_avg=64 * 1024, chunk_max=256 * 1024)


def data(size: int, seed: int = 3) -> bytes:
    rnd = random.Random(seed)
    return b"".join(rnd.choice([b"INSERT INTO t VALUES (", b"'x', ", rnd.randbytes(6).hex().encode(), b");\n"])
                    for _ in range(size // 8))[:size]


def config_of(storage: MemoryStorage, repo: Repository) -> dict:
    return repo.key.open_json(storage.get(CONFIG), "config", "config")


def restored(repo: Repository) -> bytes:
    out = io.BytesIO()
    repo.restore("latest", out)
    return out.getvalue()


def test_a_new_repository_is_version_4_with_blake3_ids_names_and_checksums() -> None:
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", SMALL)
    assert config_of(storage, repo)["version"] == 4
    assert config_of(storage, repo)["ids"] == {"algorithm": "blake3-keyed"}
    assert config_of(storage, repo)["names"] == {"algorithm": "blake3"}
    chunk = b"a chunk of a dump"
    assert repo.key.chunk_id(chunk) == blake3.blake3(chunk, key=repo.key.id_key).digest()
    payload = data(600_000)
    snap = repo.backup(io.BytesIO(payload))
    assert snap.checksum == "blake3:" + blake3.blake3(payload).hexdigest()
    for info in storage.list("data/"):
        assert info.name.rsplit("/", 1)[1] == blake3.blake3(storage.get(info.name)).hexdigest()
    for prefix in ("index/", "snapshots/"):
        for info in storage.list(prefix):
            assert info.name[len(prefix):] == blake3.blake3(storage.get(info.name)).hexdigest()
    reopened = Repository.open(storage, "pw")
    assert restored(reopened) == payload
    assert reopened.check(read_data=True).ok


def test_a_version_3_repository_keeps_sha256_names_and_checksums() -> None:
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", replace(SMALL, names="sha256"))
    doc = config_of(storage, repo)
    assert "names" not in doc
    storage.put(CONFIG, repo.key.seal_json({**doc, "version": 3}, "config"))
    payload = data(600_000)
    first = Repository.open(storage, "pw").backup(io.BytesIO(payload))
    assert first.checksum == "sha256:" + hashlib.sha256(payload).hexdigest()
    for info in storage.list("data/"):
        assert info.name.rsplit("/", 1)[1] == hashlib.sha256(storage.get(info.name)).hexdigest()
    second = Repository.open(storage, "pw").backup(io.BytesIO(payload))
    assert second.added_size == 0
    reopened = Repository.open(storage, "pw")
    assert config_of(storage, reopened)["version"] == 3  # never silently upgraded
    assert restored(reopened) == payload
    assert reopened.check(read_data=True).ok
    pack = next(iter(storage.list("data/"))).name
    storage.put(pack, storage.get(pack)[:-1] + b"!")  # damaged: its SHA-256 no longer matches its name
    assert any("does not match its name" in e for e in reopened.check(read_data=True).errors)


def _version_1_repository(storage: MemoryStorage) -> Repository:
    """A repository as stashplan wrote it before version 2: config version 1 without an `ids` field."""
    repo = Repository.init(storage, "pw", Params(SMALL.chunk_min, SMALL.chunk_avg, SMALL.chunk_max, ids="hmac-sha256"))
    doc = config_of(storage, repo)
    del doc["ids"]
    doc["version"] = 1
    storage.put(CONFIG, replace(repo.key, legacy=True).seal_json(doc, "config"))
    return Repository.open(storage, "pw")


def test_a_version_1_repository_keeps_its_hmac_ids_and_still_deduplicates_restores_and_checks() -> None:
    storage = MemoryStorage()
    repo = _version_1_repository(storage)
    assert repo.key.chunk_id(b"x") == hmac.digest(repo.key.id_key, b"x", "sha256")
    payload = data(600_000)
    first = repo.backup(io.BytesIO(payload))
    second = Repository.open(storage, "pw").backup(io.BytesIO(payload))
    assert first.added_size > 0 and second.added_size == 0  # same ids as before: nothing new stored
    reopened = Repository.open(storage, "pw")
    assert config_of(storage, reopened)["version"] == 1  # never silently upgraded
    assert restored(reopened) == payload
    assert reopened.check(read_data=True).ok


def test_a_newer_format_or_an_unknown_id_algorithm_is_refused() -> None:
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", SMALL)
    doc = config_of(storage, repo)
    storage.put(CONFIG, repo.key.seal_json({**doc, "version": 5}, "config"))
    with pytest.raises(RepositoryError, match="format version 5"):
        Repository.open(storage, "pw")
    storage.put(CONFIG, repo.key.seal_json({**doc, "ids": {"algorithm": "md5"}}, "config"))
    with pytest.raises(RepositoryError, match="unknown chunk id algorithm 'md5'"):
        Repository.open(storage, "pw")
    storage.put(CONFIG, repo.key.seal_json({**doc, "names": {"algorithm": "md5"}}, "config"))
    with pytest.raises(RepositoryError, match="unknown object name hash 'md5'"):
        Repository.open(storage, "pw")
