"""Pure pieces of the repository format: chunking, sealing, key wrapping, packs, the retry wrapper."""

from __future__ import annotations

import hashlib
import io
import os
import random
from datetime import UTC, datetime

import pytest

from providers.storage import MemoryStorage, RetryingStorage
from stashplan.errors import TransientError
from stashplan.repository import chunking, crypto, snapshots
from stashplan.repository.chunking import chunk_stream, cut_points
from stashplan.repository.crypto import CorruptData, MasterKey, WrongPassword, scrypt, unwrap_key, wrap_key
from stashplan.repository.layout import Params
from stashplan.repository.packs import PackBuilder, read_header

PARAMS = Params(chunk_min=16 * 1024, chunk_avg=64 * 1024, chunk_max=256 * 1024)


def sample(size: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    words = [rnd.randbytes(rnd.randint(2, 9)).hex() for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rnd.choices(words, k=12)) + "\n").encode()
    return bytes(out[:size])


class Trickle:
    """A stream without readinto that hands out at most `step` bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self.src = io.BytesIO(data)
        self.step = step

    def read(self, n: int = -1) -> bytes:
        return self.src.read(min(n, self.step))


def test_stream_chunking_matches_whole_buffer_chunking_for_any_read_pattern() -> None:
    data = sample(3 << 20)
    whole = cut_points(memoryview(data), PARAMS)
    for stream in (Trickle(data, 1000), Trickle(data, 65_537), io.BytesIO(data)):
        ends, pos = [], 0
        for chunk, _slot in chunk_stream(stream, PARAMS):
            pos += len(chunk)
            ends.append(pos)
        assert ends == whole
    assert all(
        PARAMS.chunk_min <= b - a <= PARAMS.chunk_max
        for a, b in zip([0, *whole[:-2]], whole[:-1], strict=True)
    )


def test_chunks_stay_intact_until_the_chunker_asks_to_reuse_their_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chunking, "READ_SIZE", 256 * 1024)
    data = sample(3 << 20)
    held: list[tuple[int, memoryview, int]] = []  # slot, chunk view, stream offset
    reused: list[int] = []

    def release(slot: int) -> None:
        reused.append(slot)
        for item in [h for h in held if h[0] == slot]:
            _slot, view, offset = item
            assert bytes(view) == data[offset : offset + len(view)]
            held.remove(item)

    pos = 0
    for chunk, slot in chunk_stream(io.BytesIO(data), PARAMS, before_reuse=release):
        held.append((slot, chunk, pos))
        pos += len(chunk)
    for _slot, view, offset in held:
        assert bytes(view) == data[offset : offset + len(view)]
    assert pos == len(data)
    assert set(reused) == {0, 1, 2} and len(reused) >= 6


def test_an_insertion_changes_only_the_chunks_around_it() -> None:
    data = sample(2 << 20)
    edited = data[:1_000_000] + b"INSERTED ROW\n" + data[1_000_000:]
    key = MasterKey.generate()

    def ids(buf: bytes) -> set[bytes]:
        return {key.chunk_id(c) for c, _slot in chunk_stream(io.BytesIO(buf), PARAMS)}

    before, after = ids(data), ids(edited)
    assert len(after - before) <= 2
    assert len(before & after) >= len(before) - 2


def test_empty_stream_has_no_chunks() -> None:
    assert list(chunk_stream(io.BytesIO(b""), PARAMS)) == []


def test_sealed_data_opens_with_the_same_key_and_aad_only() -> None:
    key = MasterKey.generate()
    sealed = key.seal(b"secret rows", b"aad")
    assert key.open(sealed, b"aad") == b"secret rows"
    with pytest.raises(CorruptData, match="chunk X is corrupt"):
        key.open(sealed, b"other", what="chunk X")
    tampered = bytearray(sealed)
    tampered[20] ^= 1
    with pytest.raises(CorruptData):
        key.open(bytes(tampered), b"aad")
    with pytest.raises(CorruptData):
        MasterKey.generate().open(sealed, b"aad")


@pytest.mark.parametrize(("n", "r", "p", "dklen"), [(16, 1, 1, 32), (2**10, 8, 3, 64), (2**12, 4, 7, 32), (2**14, 8, 2, 64)])
def test_parallel_scrypt_derives_exactly_the_standard_scrypt_bytes(n: int, r: int, p: int, dklen: int) -> None:
    # Key files written by any scrypt (restic's included) must open, and ours must open anywhere.
    salt = os.urandom(32)
    expected = hashlib.scrypt(b"pass word", salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=1 << 30)
    assert scrypt(b"pass word", salt, n, r, p, dklen) == expected


def test_scrypt_lanes_run_side_by_side_only_within_the_memory_budget() -> None:
    # Each lane holds 128 * r * N bytes while it runs: two 32 MiB lanes at once, but a 64 MiB lane (a restic key
    # with N = 2^16) alone, so opening a repository stays within the dump pipe's memory budget.
    budget_lanes = crypto.KDF_MEMORY // (128 * 8 * 2**15)
    assert crypto.kdf_threads(2**15, 8) == min(crypto.KDF_THREADS, budget_lanes, len(os.sched_getaffinity(0)))
    assert crypto.kdf_threads(2**16, 8) == 1
    assert crypto.kdf_threads(2**20, 8) == 1


def test_wrapped_master_key_needs_the_password_and_never_shows_it() -> None:
    key = MasterKey.generate()
    doc = wrap_key(key, "correct horse", n=2**10)
    assert unwrap_key(doc, "correct horse") == key
    with pytest.raises(WrongPassword):
        unwrap_key(doc, "battery staple")
    assert "correct horse" not in repr(doc) and key.encryption.hex() not in repr(key)


def test_pack_header_lists_every_blob_with_its_offset_and_buffers_are_reused() -> None:
    key = MasterKey.generate()
    builder = PackBuilder(key)
    blobs = [key.chunk_id(bytes([n])) for n in range(3)]
    for n, blob_id in enumerate(blobs):
        builder.add(0, blob_id, key.seal(bytes([n]) * 10, blob_id), 10)
    pack = builder.finish()
    data = bytes(pack.data)
    assert read_header(key, pack.id, data) == pack.refs
    assert [r.id for r in pack.refs] == blobs
    with pytest.raises(CorruptData, match=pack.id):
        read_header(key, pack.id, data[:-9] + b"\0" * 9)
    buffer = pack.buffer
    builder.recycle(pack)
    builder.add(0, blobs[0], key.seal(b"x", blobs[0]), 1)
    assert builder.finish().buffer is buffer


class FlakyStorage(MemoryStorage):
    """A real in-memory backend whose first `failures` calls of get/put raise TransientError."""

    def __init__(self, failures: int) -> None:
        super().__init__("flaky")
        self.failures = failures
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientError("503 SlowDown")

    def put(self, name: str, source: object) -> None:  # type: ignore[override]
        self._maybe_fail()
        super().put(name, source)  # type: ignore[arg-type]

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        self._maybe_fail()
        return super().get(name, offset, length)


def test_retry_wrapper_retries_transient_failures_with_growing_delays() -> None:
    inner = FlakyStorage(failures=3)
    sleeps: list[float] = []
    storage = RetryingStorage(inner, attempts=5, base_delay=0.1, sleep=sleeps.append)
    storage.put("config", io.BytesIO(b"abc"))
    assert storage.get("config") == b"abc"
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2]


def test_retry_wrapper_gives_up_after_its_attempts() -> None:
    storage = RetryingStorage(FlakyStorage(failures=10), attempts=3, sleep=lambda _s: None)
    with pytest.raises(TransientError, match="SlowDown"):
        storage.put("config", b"abc")


def test_manifest_records_invoker_and_target_and_older_manifests_without_them_still_decode() -> None:
    when = datetime(2024, 5, 1, 10, tzinfo=UTC)
    snap = snapshots.Snapshot(
        "", "", when, when, "host-0", ("session=s1",), "sqlite:app", "dumpfile.sql", 10, 5, "blake3-chunks:ab",
        invoker=snapshots.InvokerRef("BackupConfiguration", "demo", "app-backup"),
        target=snapshots.TargetRef("demo", "app"),
    )
    doc = snapshots.encode(snap, [b"\x01" * 32], 1)
    assert doc["invoker"] == {"kind": "BackupConfiguration", "namespace": "demo", "name": "app-backup"}
    assert doc["target"] == {"namespace": "demo", "name": "app"}
    back = snapshots.decode("f" * 64, doc).snapshot
    assert (back.invoker, back.target) == (snap.invoker, snap.target)
    old = {k: v for k, v in doc.items() if k not in ("invoker", "target")}
    assert snapshots.decode("f" * 64, old).snapshot.invoker is None
