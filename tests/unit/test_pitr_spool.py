"""The pieces of a fast PITR restore that need no server: the base backup's tar written into a directory as
it streams (whatever the chunk sizes, refusing what could leave the directory or was cut short), the
prefetch spool restore_command is answered from (waiting for a live fetcher only, linking, pruning what
recovery has passed), and which WAL files recovery reads first."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stashplan.errors import StashplanError
from stashplan.pitr import spool_serve
from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.prefetch import recovery_files, segments_after
from stashplan.pitr.spool_names import PENDING
from stashplan.pitr.timelines import Switch
from stashplan.pitr.untar import TarIntoDirectory
from stashplan.pitr.walnames import segment_name
from stashplan.pitr.window import windows

SEG = 16 * 1024 * 1024
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _tar(members: list[tuple[str, bytes | None, int]], last_kind: bytes = tarfile.REGTYPE) -> bytes:
    """A ustar archive of `members` (None: a directory); the last file member is of `last_kind`."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for i, (name, data, mode) in enumerate(members):
            kind = last_kind if i == len(members) - 1 else tarfile.REGTYPE
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                info.type = kind
                archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _feed(root: Path, data: bytes, step: int) -> TarIntoDirectory:
    sink = TarIntoDirectory(root)
    for i in range(0, len(data), step):
        sink.write(memoryview(data)[i : i + step])
    return sink


MEMBERS = [
    ("base", None, 0o700),
    ("base/1", None, 0o700),
    ("base/1/1259", os.urandom(70_000), 0o600),
    ("base/1/empty", b"", 0o600),
    ("global/pg_control", b"c" * 8192, 0o640),
    ("PG_VERSION", b"15\n", 0o644),
]


@pytest.mark.parametrize("step", [1, 7, 511, 512, 513, 65_536, 1 << 22])
def test_the_tar_is_written_whatever_the_chunk_sizes(tmp_path: Path, step: int) -> None:
    data = _tar(MEMBERS)
    root = tmp_path / "pgdata"
    root.mkdir()
    sink = _feed(root, data, step if step > 1 or len(data) < 200_000 else 3)
    sink.close()
    for name, content, mode in MEMBERS:
        path = root / name
        if content is None:
            assert path.is_dir()
        else:
            assert path.read_bytes() == content
            assert path.stat().st_mode & 0o777 == mode & 0o700  # owner permissions only, as PostgreSQL keeps
    assert sink.files == 4


@pytest.mark.parametrize(
    ("name", "kind", "said"),
    [
        ("../outside", tarfile.REGTYPE, "points outside the data directory"),
        ("base/../../outside", tarfile.REGTYPE, "points outside the data directory"),
        ("pg_tblspc/16384", tarfile.SYMTYPE, "only files and directories are restored"),
        ("dev", tarfile.CHRTYPE, "only files and directories are restored"),
    ],
)
def test_members_that_could_leave_the_directory_are_refused_by_name(
    tmp_path: Path, name: str, kind: bytes, said: str
) -> None:
    root = tmp_path / "pgdata"
    root.mkdir()
    with pytest.raises(StashplanError, match=said) as refused:
        _feed(root, _tar([("PG_VERSION", b"15\n", 0o600), (name, b"x", 0o600)], kind), 100)
    assert name in str(refused.value)
    assert not (tmp_path / "outside").exists()


def test_a_stream_cut_short_is_refused(tmp_path: Path) -> None:
    data = _tar(MEMBERS)
    members_end = data.rindex(b"15\n") + 3  # the last member's data, before the end-of-archive blocks
    for cut in (members_end, 1536 + 100):  # no end blocks; inside the first file's data
        root = tmp_path / f"cut-{cut}"
        root.mkdir()
        sink = _feed(root, data[:cut], 4096)
        with pytest.raises(StashplanError, match=r"ended early|cut short"):
            sink.close()


def test_an_existing_file_is_never_written_through(tmp_path: Path) -> None:
    root = tmp_path / "pgdata"
    root.mkdir()
    (tmp_path / "secret").write_text("keep")
    (root / "PG_VERSION").symlink_to(tmp_path / "secret")
    with pytest.raises(OSError):
        _feed(root, _tar([("PG_VERSION", b"15\n", 0o600)]), 4096)
    assert (tmp_path / "secret").read_text() == "keep"


def _segment(n: int, tli: int = 1) -> str:
    return segment_name(tli, n, SEG)


def test_a_spooled_segment_is_linked_into_place_and_the_ones_before_it_pruned(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    for n in (3, 4, 5):
        (spool / _segment(n)).write_bytes(bytes([n]) * 100)
    (spool / "00000002.history").write_text("1\t0/5000000\tno recovery target specified\n")
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()

    assert spool_serve.serve(spool, _segment(4), pg_wal / "RECOVERYXLOG")
    assert (pg_wal / "RECOVERYXLOG").read_bytes() == bytes([4]) * 100
    assert sorted(os.listdir(spool)) == sorted(["00000002.history", _segment(4), _segment(5)])  # 3 passed
    assert spool_serve.serve(spool, _segment(4), pg_wal / "RECOVERYXLOG")  # asked again when recovery ends
    assert spool_serve.serve(spool, "00000002.history", pg_wal / "RECOVERYHISTORY")
    assert spool_serve.serve(spool, "00000002.history", pg_wal / "RECOVERYHISTORY")  # may be asked twice
    assert not spool_serve.serve(spool, _segment(6), pg_wal / "RECOVERYXLOG")
    assert spool_serve.held(spool) == 1  # 5 unread; 4 is linked into pg_wal (read)


def test_a_pending_file_is_waited_for_while_its_fetcher_lives_and_not_after_it_died(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    name = _segment(7)
    assert spool_serve.mark_pending(spool, [name]) == [name]  # by this (live) process
    assert spool_serve.mark_pending(spool, [name]) == []  # pending already

    def fetched() -> None:
        time.sleep(0.3)
        (spool / name).write_bytes(b"wal")
        spool_serve.done(spool, name)

    threading.Thread(target=fetched).start()
    started = time.monotonic()
    assert spool_serve.serve(spool, name, tmp_path / "RECOVERYXLOG")
    assert time.monotonic() - started >= 0.25
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == b"wal"

    dead = _segment(8)
    (spool / (dead + PENDING)).write_text("999999999")  # a fetcher that died
    started = time.monotonic()
    assert not spool_serve.serve(spool, dead, tmp_path / "RECOVERYXLOG")
    assert time.monotonic() - started < 0.2
    assert spool_serve.mark_pending(spool, [dead]) == [dead]  # taken over


def test_the_shell_free_answers_need_the_spool_option_and_name_timeline_one_history(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / _segment(9)).write_bytes(b"wal")
    base = ["-r", "s3:https://example/bucket", "--spool", str(spool), "--not-found-exit", "81"]
    assert spool_serve.answer_from_args([*base, "00000001.history", str(tmp_path / "h")]) == 81
    assert spool_serve.answer_from_args([*base, _segment(9), str(tmp_path / "x")]) == 0
    assert spool_serve.answer_from_args([*base, _segment(10), str(tmp_path / "x")]) is None  # ask s3
    assert (
        spool_serve.answer_from_args(["-r", "local:/x", _segment(9), str(tmp_path / "x")]) is None
    )  # no spool
    local = tmp_path / "repo"
    (local / "wal" / "00000001").mkdir(parents=True)
    (local / "config").write_bytes(b"sealed")
    (local / "wal" / "00000001" / _segment(11)).write_bytes(b"sealed")
    args = ["-r", f"local:{local}", "--spool", str(spool)]
    assert spool_serve.answer_from_args([*args, _segment(12), str(tmp_path / "x")]) == 1  # absent: no key
    assert spool_serve.answer_from_args([*args, _segment(11), str(tmp_path / "x")]) is None  # held: the CLI
    (local / "config").unlink()  # not a repository (a wrong path): never "not found"
    assert spool_serve.answer_from_args([*args, _segment(12), str(tmp_path / "x")]) is None


def test_recovery_reads_the_target_history_then_segments_along_the_timeline_history() -> None:
    backup = BaseBackup("b1", 1, 3 * SEG + 40, 3 * SEG + 400, T0, T0)
    switch = 5 * SEG + 100  # timeline 2 begins inside segment 5
    histories = {2: (Switch(1, switch),)}
    segments = {1: {3, 4, 5}, 2: {5, 6, 7, 8}}
    window = next(w for w in windows([backup], segments, SEG, histories) if w.timeline == 2)
    names = recovery_files(backup, window, histories, segments, 10, segment_size=SEG)
    assert names == ["00000002.history", _segment(3), _segment(4), _segment(5, 2), _segment(6, 2), _segment(7, 2),
                     _segment(8, 2)]  # fmt: skip
    assert recovery_files(backup, window, histories, segments, 3, segment_size=SEG) == names[:3]
    stop = recovery_files(backup, window, histories, segments, 10, segment_size=SEG, stop_lsn=6 * SEG + 5)
    assert stop == names[:5]  # up to the segment holding an LSN target
    whole = {1: {3, 4, 5}, 2: {5, 6, 8}}  # 7 held only as .partial (left out), so nothing after it either
    assert recovery_files(backup, window, histories, whole, 10, segment_size=SEG) == names[:5]
    assert segments_after(_segment(0xFF), 2, SEG) == ["000000010000000100000000", "000000010000000100000001"]
    assert segments_after("00000002.history", 2, SEG) == []
