"""The repository engine end to end on the local backend: round trips, dedup, damage, interruption, prune."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path
from typing import BinaryIO, cast

import blake3
import pytest

from providers.storage import Storage, open_storage
from stashplan.errors import RepositoryError
from stashplan.repository import Params, Repository, RetentionPolicy
from stashplan.repository.chunking import cut_points

SMALL = Params(chunk_min=16 * 1024, chunk_avg=64 * 1024, chunk_max=256 * 1024, pack_size=512 * 1024)


def dump(size: int, seed: int = 1) -> bytes:
    """SQL-dump-like text: COPY rows with ids, numbers and words."""
    rnd = random.Random(seed)
    words = [rnd.randbytes(rnd.randint(2, 8)).hex() for _ in range(2000)]
    out = bytearray(b"COPY public.items (id, qty, note) FROM stdin;\n")
    n = 0
    while len(out) < size:
        n += 1
        out += f"{n}\t{rnd.randint(0, 10**6)}\t{' '.join(rnd.choices(words, k=10))}\n".encode()
    return bytes(out[:size])


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return open_storage(f"local:{tmp_path}/repo")


@pytest.fixture
def repo(storage: Storage) -> Repository:
    return Repository.init(storage, "s3cret", SMALL, kdf=(2**14, 8, 1))  # a cheap scrypt: not what is tested here


def restore_bytes(repo: Repository, ref: str = "latest") -> bytes:
    out = io.BytesIO()
    repo.restore(ref, out)
    return out.getvalue()


def chunk_checksum(data: bytes, repo: Repository) -> str:
    """The format-4 stream checksum, computed here from its definition: BLAKE3 over the chunks' BLAKE3s."""
    outer, start = blake3.blake3(), 0
    for end in cut_points(memoryview(data), repo.params):
        outer.update(blake3.blake3(data[start:end]).digest())
        start = end
    return "blake3-chunks:" + outer.hexdigest()


@pytest.mark.parametrize("size", [0, 1, 100, 3 * 1024 * 1024 + 17])
def test_backup_then_restore_returns_the_stream_byte_for_byte(repo: Repository, size: int) -> None:
    data = dump(size)
    snap = repo.backup(io.BytesIO(data), hostname="db-0", tags=["nightly"], filename="dump.sql")
    assert snap.total_size == size
    assert snap.checksum == chunk_checksum(data, repo)
    assert (snap.hostname, snap.tags, snap.filename) == ("db-0", ("nightly",), "dump.sql")
    assert restore_bytes(repo, snap.short_id) == data
    assert repo.check(read_data=True).ok


def test_reopening_with_the_password_sees_the_snapshots(storage: Storage, repo: Repository) -> None:
    snap = repo.backup(io.BytesIO(b"rows"))
    again = Repository.open(storage, "s3cret")
    assert [s.id for s in again.snapshots()] == [snap.id]
    assert restore_bytes(again, snap.id) == b"rows"


def test_wrong_password_is_one_clear_error(storage: Storage, repo: Repository) -> None:
    with pytest.raises(RepositoryError, match=r"^wrong password for repository local:"):
        Repository.open(storage, "guess")


def test_opening_an_empty_location_says_it_is_not_initialised(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match=r"no repository at .*\(run `stashplan repo init`\)"):
        Repository.open(open_storage(f"local:{tmp_path}/none"), "pw")


def test_init_twice_is_refused(storage: Storage, repo: Repository) -> None:
    with pytest.raises(RepositoryError, match="already exists"):
        Repository.init(storage, "other")
    assert Repository.open_or_init(storage, "s3cret").id == repo.id


def test_second_snapshot_of_a_slightly_changed_stream_stores_little(repo: Repository) -> None:
    data = dump(4 * 1024 * 1024)
    first = repo.backup(io.BytesIO(data))
    changed = data[:2_000_000] + b"99999\t1\tupdated row\n" * 50 + data[2_000_000:] + b"appended\n" * 100
    second = repo.backup(io.BytesIO(changed))
    assert second.added_size < first.added_size * 0.15
    assert repo.backup(io.BytesIO(data)).added_size < 4096  # only its content list is new
    assert restore_bytes(repo, first.id) == data
    assert restore_bytes(repo, second.id) == changed
    stats = repo.stats()
    assert stats.snapshot_count == 3 and stats.dedup_ratio > 2


def test_snapshots_filter_by_host_and_tag_and_latest_follows_the_host(repo: Repository) -> None:
    repo.backup(io.BytesIO(b"a"), hostname="h1", tags=["x"])
    repo.backup(io.BytesIO(b"b"), hostname="h2", tags=["x", "y"])
    repo.backup(io.BytesIO(b"c"), hostname="h1", tags=["y"])
    assert [s.hostname for s in repo.snapshots(hostname="h1")] == ["h1", "h1"]
    assert len(repo.snapshots(tags=["x"])) == 2
    assert len(repo.snapshots(tags=["x", "y"])) == 1
    out = io.BytesIO()
    assert repo.restore("latest", out, hostname="h2").hostname == "h2"
    assert out.getvalue() == b"b"
    assert restore_bytes(repo) == b"c"


def test_interrupted_backup_records_no_snapshot_and_the_next_one_succeeds(repo: Repository) -> None:
    data = dump(3 * 1024 * 1024)

    class Breaking(io.RawIOBase):
        def __init__(self) -> None:
            self.src = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.src.tell() > 2_000_000:
                raise OSError("pg_dump died")
            return self.src.read(min(n, 300_000))

    with pytest.raises(OSError, match="pg_dump died"):
        repo.backup(Breaking())  # type: ignore[arg-type]
    assert repo.snapshots() == []
    assert list(repo.storage.list("locks/")) == []
    snap = repo.backup(io.BytesIO(data))
    assert restore_bytes(repo, snap.id) == data
    result = repo.check(read_data=True)
    assert result.ok, result.errors
    repo.prune()
    assert repo.check(read_data=True).warnings == []


def packs_of(storage: Storage) -> list[str]:
    return sorted(i.name for i in storage.list("data/"))


def test_missing_pack_fails_check_and_restore_naming_the_pack(storage: Storage, repo: Repository) -> None:
    data = dump(2 * 1024 * 1024)
    snap = repo.backup(io.BytesIO(data))
    victim = packs_of(storage)[0]
    storage.delete(victim)
    pack_id = victim.rsplit("/", 1)[1]
    result = repo.check()
    assert not result.ok
    assert any(pack_id in e and "missing" in e for e in result.errors)
    with pytest.raises(RepositoryError, match=f"pack {pack_id} is missing"):
        restore_bytes(repo, snap.id)


def test_corrupted_pack_fails_check_read_data_and_restore_naming_pack_and_chunk(
    storage: Storage, repo: Repository, tmp_path: Path
) -> None:
    data = dump(2 * 1024 * 1024)
    snap = repo.backup(io.BytesIO(data))
    victim = packs_of(storage)[0]
    path = tmp_path / "repo" / victim
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    pack_id = victim.rsplit("/", 1)[1]
    assert repo.check().ok  # structure is intact; only reading the data finds it
    result = repo.check(read_data=True)
    assert any(pack_id in e and "corrupt" in e for e in result.errors), result.errors
    with pytest.raises(RepositoryError, match=rf"chunk [0-9a-f]{{16}} in pack {pack_id} is corrupt"):
        restore_bytes(repo, snap.id)


def test_forget_then_prune_keeps_every_kept_snapshot_restorable(storage: Storage, repo: Repository) -> None:
    streams = [dump(1024 * 1024, seed=n) for n in range(4)]
    snaps = [repo.backup(io.BytesIO(s)) for s in streams]
    before = sum(i.size for i in storage.list("data/"))
    dry = repo.forget(RetentionPolicy(keep_last=2), dry_run=True)
    assert [s.id for s in dry.remove] == [snaps[0].id, snaps[1].id]
    assert len(repo.snapshots()) == 4
    result = repo.forget(RetentionPolicy(keep_last=2), prune=True)
    assert [s.id for s in result.keep] == [snaps[2].id, snaps[3].id]
    assert sum(i.size for i in storage.list("data/")) < before * 0.7
    for snap, data in zip(snaps[2:], streams[2:], strict=True):
        assert restore_bytes(repo, snap.id) == data
    assert repo.check(read_data=True).ok


def test_prune_repacks_partly_used_packs_without_losing_kept_chunks(storage: Storage) -> None:
    repo = Repository.init(
        storage, "pw", Params(chunk_min=16384, chunk_avg=65536, chunk_max=262144, pack_size=8 << 20)
    )
    shared = dump(1024 * 1024, seed=5)
    old = repo.backup(io.BytesIO(shared + dump(512 * 1024, seed=6)))
    keep = repo.backup(io.BytesIO(shared + dump(512 * 1024, seed=7)))
    repo.storage.delete(f"snapshots/{old.id}")
    result = repo.prune()
    assert result.packs_repacked >= 1 and result.blobs_removed > 0
    assert restore_bytes(repo, keep.id) == shared + dump(512 * 1024, seed=7)
    assert repo.check(read_data=True).ok


def test_snapshot_refs_resolve_by_unique_prefix_and_reject_unknown(repo: Repository) -> None:
    snap = repo.backup(io.BytesIO(b"x"))
    assert restore_bytes(repo, snap.id[:6]) == b"x"
    with pytest.raises(RepositoryError, match="snapshot deadbeef not found"):
        restore_bytes(repo, "deadbeef")


def test_backup_from_a_real_pipe_with_short_reads_round_trips(repo: Repository) -> None:
    import subprocess

    script = "import sys, random; r = random.Random(3); [sys.stdout.buffer.write(r.randbytes(70001)) for _ in range(60)]"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdout is not None
    snap = repo.backup(cast(BinaryIO, proc.stdout))  # a raw FileIO: readinto returns whatever the pipe holds
    assert proc.wait() == 0
    expected = random.Random(3)
    data = b"".join(expected.randbytes(70001) for _ in range(60))
    assert snap.total_size == len(data) and snap.checksum == chunk_checksum(data, repo)
    assert restore_bytes(repo, snap.id) == data


def test_prune_leaves_packs_with_little_unused_data_alone(storage: Storage) -> None:
    repo = Repository.init(
        storage, "pw", Params(chunk_min=16384, chunk_avg=65536, chunk_max=262144, pack_size=8 << 20)
    )
    shared = dump(2 * 1024 * 1024, seed=8)
    old = repo.backup(io.BytesIO(shared + b"old tail\n"))
    keep = repo.backup(io.BytesIO(shared + b"new tail\n"))
    repo.storage.delete(f"snapshots/{old.id}")
    packs_before = packs_of(storage)
    result = repo.prune()
    assert result.packs_repacked == 0 and packs_of(storage) == packs_before  # < 5% unused: not worth moving
    assert restore_bytes(repo, keep.id) == shared + b"new tail\n"
    assert repo.check(read_data=True).ok


def test_prune_refuses_when_a_pack_with_used_data_is_missing(storage: Storage, repo: Repository) -> None:
    from stashplan.repository.index import load_index
    from stashplan.repository.layout import BLOB_LIST, pack_name

    snap = repo.backup(
        io.BytesIO(random.Random(4).randbytes(2 * 1024 * 1024))
    )  # incompressible: several packs
    index = load_index(storage, repo.key)
    list_packs = {r.pack for r in index.refs() if r.type == BLOB_LIST}
    victim = next(p for p in index.packs() if p not in list_packs)
    storage.delete(pack_name(victim))
    with pytest.raises(
        RepositoryError, match=rf"^prune: pack {victim} is missing but holds \d+ blobs that snapshots use"
    ):
        repo.prune()
    assert [s.id for s in repo.snapshots()] == [snap.id]
