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
import zstandard

from providers.storage import MemoryStorage
from stashplan.errors import RepositoryError
from stashplan.repository.layout import BLOB_DATA, CONFIG, Params, pack_name
from stashplan.repository.repo import Repository
from stashplan.repository.writer import PackWriter

SMALL = Params(chunk_min=16 * 1024, chunk_avg=64 * 1024, chunk_max=256 * 1024)
CHEAP_KDF = (2**14, 8, 1)  # scrypt N, r, p: the key derivation is not what is tested here


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


def test_a_new_repository_is_version_4_with_one_blake3_pass_for_ids_names_and_checksums() -> None:
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", SMALL, kdf=CHEAP_KDF)
    assert config_of(storage, repo)["version"] == 4
    assert config_of(storage, repo)["names"] == {"algorithm": "blake3"}
    assert config_of(storage, repo)["ids"] == {"algorithm": "blake3-digest-keyed"}
    chunk = b"a chunk of a dump"
    digest = blake3.blake3(chunk).digest()
    assert repo.key.chunk_id(chunk) == blake3.blake3(digest, key=repo.key.id_key).digest()
    payload = data(600_000)
    snap = repo.backup(io.BytesIO(payload))
    assert snap.checksum.startswith("blake3-chunks:")
    for info in storage.list("data/"):
        assert info.name.rsplit("/", 1)[1] == blake3.blake3(storage.get(info.name)).hexdigest()
    for prefix in ("index/", "snapshots/"):
        for info in storage.list(prefix):
            assert info.name[len(prefix):] == blake3.blake3(storage.get(info.name)).hexdigest()
    reopened = Repository.open(storage, "pw")
    assert restored(reopened) == payload
    assert reopened.check(read_data=True).ok


def test_a_version_3_repository_keeps_its_ids_and_sha256_names_and_checksums() -> None:
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", replace(SMALL, names="sha256", ids="blake3-keyed"), kdf=CHEAP_KDF)
    doc = config_of(storage, repo)
    assert "names" not in doc
    storage.put(CONFIG, repo.key.seal_json({**doc, "version": 3}, "config"))
    payload = data(600_000)
    first = Repository.open(storage, "pw").backup(io.BytesIO(payload))
    assert first.checksum == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert Repository.open(storage, "pw").key.chunk_id(b"x") == blake3.blake3(b"x", key=repo.key.id_key).digest()
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
    repo = Repository.init(storage, "pw", Params(SMALL.chunk_min, SMALL.chunk_avg, SMALL.chunk_max, ids="hmac-sha256"), kdf=CHEAP_KDF)
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
    repo = Repository.init(storage, "pw", SMALL, kdf=CHEAP_KDF)
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


def test_a_restore_of_format_4_checks_every_chunk_against_its_id() -> None:
    # A blob that authenticates (sealed with the key, bound to its id) but holds other bytes than the chunk
    # its id names, e.g. written by a buggy or rogue writer, is refused by name, not restored.
    storage = MemoryStorage()
    repo = Repository.init(storage, "pw", SMALL, kdf=CHEAP_KDF)
    payload = data(600_000)
    repo.backup(io.BytesIO(payload))
    refs = list(repo.load_index().refs())
    victim = next(r for r in refs if r.type == BLOB_DATA)
    forged = b"-- not the chunk this id names\n".ljust(victim.raw_length, b"x")
    writer = PackWriter(storage, repo.key, SMALL.pack_size, set())
    for ref in refs:  # the victim's pack again, with the forged blob in the victim's place
        if ref.pack == victim.pack:
            sealed = storage.get(pack_name(ref.pack), ref.offset, ref.length)
            if ref.id == victim.id:
                sealed = bytes(repo.key.seal(zstandard.ZstdCompressor().compress(forged), victim.id))
            writer.add(ref.type, ref.id, sealed, len(forged) if ref.id == victim.id else ref.raw_length)
    writer.close()
    storage.delete(pack_name(victim.pack))  # readers now find only the forged copy
    with pytest.raises(RepositoryError, match="does not match its id"):
        restored(Repository.open(storage, "pw"))
