"""Repository format versions: new repositories use keyed BLAKE3 chunk ids (version 2); version-1
repositories (HMAC-SHA256 ids) are still read, backed up into with their own ids, and checked."""

from __future__ import annotations

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


def test_a_new_repository_is_version_3_with_keyed_blake3_chunk_ids() -> None:
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", SMALL)
    assert config_of(storage, repo)["version"] == 3
    assert config_of(storage, repo)["ids"] == {"algorithm": "blake3-keyed"}
    chunk = b"a chunk of a dump"
    assert repo.key.chunk_id(chunk) == blake3.blake3(chunk, key=repo.key.id_key).digest()
    payload = data(600_000)
    repo.backup(io.BytesIO(payload))
    reopened = Repository.open(storage, "pw")
    assert restored(reopened) == payload
    assert reopened.check(read_data=True).ok


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
    storage.put(CONFIG, repo.key.seal_json({**doc, "version": 4}, "config"))
    with pytest.raises(RepositoryError, match="format version 4"):
        Repository.open(storage, "pw")
    storage.put(CONFIG, repo.key.seal_json({**doc, "ids": {"algorithm": "md5"}}, "config"))
    with pytest.raises(RepositoryError, match="unknown chunk id algorithm 'md5'"):
        Repository.open(storage, "pw")
