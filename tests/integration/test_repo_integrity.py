"""Repository integrity (issue 9) on the local backend and the S3 API server: atomic init, backups
that never reference a lost pack, objects bound to their names, damaged files skipped, not fatal."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.storage import Storage, open_storage
from stashplan.errors import RepositoryError
from stashplan.repository import Params, Repository
from stashplan.repository import keys as repo_keys
from stashplan.repository.crypto import MasterKey
from stashplan.repository.layout import CONFIG, DATA, INDEX, KEYS, SNAPSHOTS, pack_name
from tests.fixtures.s3 import S3Bucket
from tests.integration.test_repo_engine import dump

SMALL = Params(chunk_min=16 * 1024, chunk_avg=64 * 1024, chunk_max=256 * 1024, pack_size=256 * 1024)
FAST_KDF = (2**14, 8, 1)


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield open_storage(f"local:{tmp_path}/repo")
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        yield open_storage(bucket.repo_url("repo"), env=bucket.endpoint.env())


@pytest.fixture
def local_storage(tmp_path: Path) -> Storage:
    """For defects of the format itself, where the backend plays no part."""
    return open_storage(f"local:{tmp_path}/repo")


def restored(repo: Repository, ref: str) -> bytes:
    out = io.BytesIO()
    repo.restore(ref, out)
    return out.getvalue()


def test_racing_first_backups_share_one_repository(storage: Storage) -> None:
    barrier = threading.Barrier(4)
    opened: list[Repository] = []
    failures: list[BaseException] = []

    def first_backup(n: int) -> None:
        try:
            barrier.wait()
            repo = Repository.open_or_init(storage, "pw", SMALL, kdf=FAST_KDF)
            repo.backup(io.BytesIO(dump(300_000, seed=n)), hostname=f"db-{n}")
            opened.append(repo)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=first_backup, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len({r.id for r in opened}) == 1
    again = Repository.open(storage, "pw")
    assert len(list(storage.list(KEYS))) == 1
    snaps = again.snapshots()
    assert sorted(s.hostname for s in snaps) == ["db-0", "db-1", "db-2", "db-3"]
    for s in snaps:
        assert restored(again, s.id) == dump(300_000, seed=int(s.hostname[3:]))
    assert again.check(read_data=True).ok


def test_init_retried_after_an_interrupted_init_opens(storage: Storage) -> None:
    # What a killed init leaves: a key file for the same password, but no config.
    stray = repo_keys.key_doc(MasterKey.generate(), "pw", "interrupted", FAST_KDF)
    repo_keys.store_key(storage, stray)
    repo = Repository.init(storage, "pw", SMALL, kdf=FAST_KDF)
    assert len(list(storage.list(KEYS))) == 1
    snap = repo.backup(io.BytesIO(b"rows"))
    assert restored(Repository.open(storage, "pw"), snap.id) == b"rows"


def test_an_extra_key_that_opens_with_the_password_but_not_the_config_is_passed_over(
    local_storage: Storage,
) -> None:
    repo = Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    # A key file of an older layout (no repository id) for another master key, same password.
    doc = repo_keys.key_doc(MasterKey.generate(), "pw", "", FAST_KDF)
    del doc["repo_id"]
    repo_keys.store_key(local_storage, doc)
    assert Repository.open(local_storage, "pw").id == repo.id


def test_init_on_an_existing_repository_is_refused_and_leaves_no_key(local_storage: Storage) -> None:
    Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    with pytest.raises(RepositoryError, match="already exists"):
        Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    assert len(list(local_storage.list(KEYS))) == 1


def _only_pack_of(storage: Storage) -> str:
    packs = [i.name for i in storage.list(DATA)]
    assert len(packs) >= 1
    return packs[0]


def test_backup_after_a_pack_is_deleted_stores_its_blobs_again_and_restores(storage: Storage) -> None:
    repo = Repository.init(storage, "pw", SMALL, kdf=FAST_KDF)
    data = dump(600_000)
    repo.backup(io.BytesIO(data))
    for info in list(storage.list(DATA)):
        storage.delete(info.name)
    snap = repo.backup(io.BytesIO(data))
    assert snap.added_size > 0
    assert restored(Repository.open(storage, "pw"), snap.id) == data


def test_backup_after_a_pack_is_truncated_does_not_reference_it(local_storage: Storage) -> None:
    repo = Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    data = dump(600_000)
    repo.backup(io.BytesIO(data))
    truncated = set()
    for info in list(local_storage.list(DATA)):
        local_storage.put(info.name, local_storage.get(info.name)[:-100])
        truncated.add(info.name.rsplit("/", 1)[1])
    snap = repo.backup(io.BytesIO(data))
    assert restored(Repository.open(local_storage, "pw"), snap.id) == data
    result = Repository.open(local_storage, "pw").check(read_data=True)
    assert result.ok, result.errors
    for pack in truncated:
        assert any(pack in w and "stored again" in w for w in result.warnings)


def test_an_old_snapshot_copied_over_a_newer_ones_name_is_detected(storage: Storage) -> None:
    repo = Repository.init(storage, "pw", SMALL, kdf=FAST_KDF)
    old = repo.backup(io.BytesIO(b"old rows"))
    new = repo.backup(io.BytesIO(b"new rows"))
    storage.put(SNAPSHOTS + new.id, storage.get(SNAPSHOTS + old.id))
    again = Repository.open(storage, "pw")
    with pytest.raises(RepositoryError, match=f"snapshot {new.short_id}.* does not match its name"):
        again.restore(new.id, io.BytesIO())
    assert [s.id for s in again.snapshots()] == [old.id]
    assert any("does not match its name" in w for w in again.warnings)
    assert not again.check(read_data=True).ok


def test_an_index_file_copied_into_snapshots_is_not_a_snapshot(local_storage: Storage) -> None:
    repo = Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    repo.backup(io.BytesIO(b"rows"))
    name = next(iter(local_storage.list(INDEX))).name
    local_storage.put(SNAPSHOTS + name[len(INDEX) :], local_storage.get(name))  # right hash, wrong type
    again = Repository.open(local_storage, "pw")
    assert len(again.snapshots()) == 1
    assert any("authentication failed" in w for w in again.warnings)


def test_config_from_another_repository_does_not_open(local_storage: Storage, tmp_path: Path) -> None:
    Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    other = open_storage(f"local:{tmp_path}/other")
    Repository.init(other, "pw", SMALL, kdf=FAST_KDF)
    local_storage.put(CONFIG, other.get(CONFIG))
    with pytest.raises(RepositoryError, match=r"config .* is corrupt"):
        Repository.open(local_storage, "pw")


def test_one_damaged_index_file_does_not_stop_restore_or_backup_and_blocks_prune(storage: Storage) -> None:
    repo = Repository.init(storage, "pw", SMALL, kdf=FAST_KDF)
    first = dump(400_000, seed=1)
    second = dump(400_000, seed=2)
    a = repo.backup(io.BytesIO(first))
    index_a = {i.name for i in storage.list(INDEX)}
    b = repo.backup(io.BytesIO(second))
    damaged = sorted({i.name for i in storage.list(INDEX)} - index_a)[0]
    storage.put(damaged, b"\x00" * 64)
    again = Repository.open(storage, "pw")
    assert restored(again, a.id) == first  # intact snapshot still restores
    assert any(damaged in w for w in again.warnings)
    third = again.backup(io.BytesIO(second))  # the blobs it cannot see are stored again
    assert restored(again, third.id) == second
    with pytest.raises(RepositoryError, match=f"index file {damaged} cannot be read.*nothing deleted"):
        again.prune()
    assert restored(again, b.id) == second


def test_one_damaged_snapshot_does_not_hide_the_others(local_storage: Storage) -> None:
    repo = Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    a = repo.backup(io.BytesIO(b"a rows"))
    b = repo.backup(io.BytesIO(b"b rows"))
    local_storage.put(SNAPSHOTS + a.id, b"garbage")
    again = Repository.open(local_storage, "pw")
    assert [s.id for s in again.snapshots()] == [b.id]
    assert restored(again, "latest") == b"b rows"
    assert any(a.id[:8] in w for w in again.warnings)
    with pytest.raises(RepositoryError, match="repair snapshots"):
        again.prune()


def test_a_damaged_pack_is_named_by_check_read_data_and_by_a_subset_holding_it(
    local_storage: Storage,
) -> None:
    repo = Repository.init(local_storage, "pw", SMALL, kdf=FAST_KDF)
    repo.backup(io.BytesIO(dump(500_000)))
    name = _only_pack_of(local_storage)
    data = bytearray(local_storage.get(name))
    data[10] ^= 0xFF
    local_storage.put(name, bytes(data))
    pack = name.rsplit("/", 1)[1]
    assert repo.check().ok  # structure alone cannot see it
    group = int(pack[:2], 16) % 3 + 1
    assert repo.check(subset=f"{group % 3 + 1}/3").damaged_packs == []
    full = repo.check(read_data=True)
    assert pack in full.damaged_packs
    assert pack in repo.check(subset=f"{group}/3").damaged_packs
    assert pack in repo.check(subset="100%").damaged_packs
    # Found by a read, it is marked: every check names it from now on, reading or not, and no backup reuses it.
    assert pack in repo.check().damaged_packs
    assert pack_name(pack) == name
