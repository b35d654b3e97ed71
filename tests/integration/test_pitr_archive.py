"""`stashplan pg wal-push` / `wal-fetch` against a real local repository, as PostgreSQL runs them: the same
file twice is a no-op, a different file under an archived name is refused, history and backup files are kept,
a missing file is exit 1 (recovery ends there) and a damaged one exit 126 (recovery stops); `repo check
--read-data` opens every archived file and `repo prune` keeps them; wal-receive's partial segment is replaced,
served for its segment and counted only at the end of its timeline."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from providers.storage import open_storage
from stashplan.pitr.walstore import archived, drop_partial, store_partial
from stashplan.repository import Repository

pytestmark = pytest.mark.heavy

CHEAP_KDF = (2**14, 8, 1)  # scrypt N, r, p: the key derivation is not what is tested here
PASSWORD = "wal-archive-pass"
SEGMENT = "000000010000000000000003"


@pytest.fixture
def repo(tmp_path: Path) -> str:
    url = f"local:{tmp_path / 'repo'}"
    Repository.init(open_storage(url), PASSWORD, kdf=CHEAP_KDF).close()
    return url


def stashplan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "stashplan", *args], env=env, capture_output=True, text=True, cwd=cwd
    )


def _wal(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def test_pushing_the_same_segment_twice_is_a_no_op_and_fetch_returns_its_bytes(
    repo: str, tmp_path: Path
) -> None:
    data = os.urandom(1 << 20) * 4
    segment = _wal(tmp_path, SEGMENT, data)
    first = stashplan("pg", "wal-push", "-r", repo, str(segment))
    second = stashplan("pg", "wal-push", "-r", repo, str(segment))
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "stored" in first.stderr and "already archived" in second.stderr
    fetched = stashplan("pg", "wal-fetch", "-r", repo, SEGMENT, "pg_wal/RECOVERYXLOG", cwd=_datadir(tmp_path))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "data" / "pg_wal" / "RECOVERYXLOG").read_bytes() == data


def _datadir(tmp_path: Path) -> Path:
    (tmp_path / "data" / "pg_wal").mkdir(parents=True, exist_ok=True)
    return tmp_path / "data"


def test_a_different_segment_under_an_archived_name_is_refused(repo: str, tmp_path: Path) -> None:
    stashplan("pg", "wal-push", "-r", repo, str(_wal(tmp_path, SEGMENT, b"A" * 4096)))
    other = tmp_path / "other"
    other.mkdir()
    refused = stashplan("pg", "wal-push", "-r", repo, str(_wal(other, SEGMENT, b"B" * 4096)))
    assert refused.returncode == 1
    assert f"WAL file {SEGMENT}: the repository already holds a different file" in refused.stderr
    fetched = stashplan("pg", "wal-fetch", "-r", repo, SEGMENT, "out", cwd=tmp_path)
    assert fetched.returncode == 0 and (tmp_path / "out").read_bytes() == b"A" * 4096  # the first one stays


def test_history_and_backup_files_are_archived_and_fetched(repo: str, tmp_path: Path) -> None:
    history = _wal(tmp_path, "00000002.history", b"1\t0/3000000\tno recovery target specified\n")
    backup = _wal(tmp_path, "000000010000000000000002.00000028.backup", b"START WAL LOCATION: 0/2000028\n")
    for path in (history, backup):
        assert stashplan("pg", "wal-push", "-r", repo, str(path)).returncode == 0
    assert (Path(repo[6:]) / "wal" / "00000002" / "00000002.history").exists()
    fetched = stashplan("pg", "wal-fetch", "-r", repo, "00000002.history", "h", cwd=tmp_path)
    assert fetched.returncode == 0 and (tmp_path / "h").read_bytes() == history.read_bytes()


def test_fetch_exits_1_for_a_missing_file_and_126_for_a_damaged_one(repo: str, tmp_path: Path) -> None:
    missing = stashplan("pg", "wal-fetch", "-r", repo, "00000003.history", "x", cwd=tmp_path)
    assert missing.returncode == 1 and not (tmp_path / "x").exists()
    stashplan("pg", "wal-push", "-r", repo, str(_wal(tmp_path, SEGMENT, os.urandom(8192))))
    stored = Path(repo[6:]) / "wal" / "00000001" / SEGMENT
    damaged = bytearray(stored.read_bytes())
    damaged[40] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    broken = stashplan("pg", "wal-fetch", "-r", repo, SEGMENT, "y", cwd=tmp_path)
    assert broken.returncode == 126, broken.stderr
    assert f"wal/00000001/{SEGMENT} is corrupt" in broken.stderr and not (tmp_path / "y").exists()
    check = stashplan("repo", "check", "--read-data", "-r", repo)
    assert check.returncode == 1 and f"wal/00000001/{SEGMENT} is corrupt" in check.stdout + check.stderr


def test_prune_keeps_archived_wal_and_check_reads_it(repo: str, tmp_path: Path) -> None:
    data = os.urandom(65536)
    stashplan("pg", "wal-push", "-r", repo, str(_wal(tmp_path, SEGMENT, data)))
    pruned = stashplan("repo", "prune", "-r", repo)
    assert pruned.returncode == 0, pruned.stderr
    check = stashplan("repo", "check", "--read-data", "-r", repo)
    assert check.returncode == 0, check.stdout + check.stderr
    fetched = stashplan("pg", "wal-fetch", "-r", repo, SEGMENT, "z", cwd=tmp_path)
    assert fetched.returncode == 0 and (tmp_path / "z").read_bytes() == data


def test_a_file_postgresql_would_not_archive_is_refused(repo: str, tmp_path: Path) -> None:
    refused = stashplan("pg", "wal-push", "-r", repo, str(_wal(tmp_path, "postgresql.conf", b"x")))
    assert refused.returncode == 1 and "WAL file name 'postgresql.conf'" in refused.stderr
    assert refused.stderr.startswith("error: ") and len(refused.stderr.strip().splitlines()) == 1


def test_a_partial_segment_stands_for_its_segment_only_at_the_end_of_its_timeline(
    repo: str, tmp_path: Path
) -> None:
    opened = Repository.open(open_storage(repo), PASSWORD)
    try:
        written = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
        store_partial(opened, SEGMENT + ".partial", b"first", written, None)
        store_partial(opened, SEGMENT + ".partial", b"second", written, 0x3000100)  # replaced, not refused
        assert archived(opened).segments == {1: {3}} and archived(opened).partial_tails == {1: 3}
        fetched = stashplan("pg", "wal-fetch", "-r", repo, SEGMENT, "p", cwd=tmp_path)
        assert fetched.returncode == 0 and (tmp_path / "p").read_bytes() == b"second"
        # a whole later segment: the partial one no longer counts (its tail may be missing)
        stashplan("pg", "wal-push", "-r", repo, str(_wal(tmp_path, "000000010000000000000004", b"x" * 64)))
        assert archived(opened).segments == {1: {4}} and archived(opened).partial_tails == {}
        # the whole segment arrives: the partial one goes
        stashplan("pg", "wal-push", "-r", repo, str(_wal(tmp_path, SEGMENT, b"whole")))
        drop_partial(opened, SEGMENT)
        assert archived(opened).others == ()
    finally:
        opened.close()


def test_wal_receive_refuses_a_bad_slot_name_before_touching_anything(repo: str, tmp_path: Path) -> None:
    refused = stashplan(
        "pg", "wal-receive", "-r", repo, "--host", "127.0.0.1", "--slot", "Bad-Slot", "--directory", "recv",
        cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2 and "--slot 'Bad-Slot': a replication slot name" in refused.stderr
    assert not (tmp_path / "recv").exists()


def test_look_ahead_pushes_the_ready_files_and_answers_for_them_from_the_spool(
    repo: str, tmp_path: Path
) -> None:
    wal = tmp_path / "data" / "pg_wal"
    (wal / "archive_status").mkdir(parents=True)
    names = [f"0000000100000000000000{n:02X}" for n in range(3, 7)]
    for name in names:
        _wal(wal, name, os.urandom(8192))
        (wal / "archive_status" / f"{name}.ready").touch()
    spool = tmp_path / "spool"
    first = stashplan("pg", "wal-push", "-r", repo, "--spool", str(spool), str(wal / names[0]))
    assert first.returncode == 0 and "pushed 3 ready files ahead" in first.stderr, first.stderr
    assert {p.name for p in (Path(repo[6:]) / "wal" / "00000001").iterdir()} == set(names)
    # answered from the spool: the repository is not even opened (a wrong password goes unnoticed)
    env = {**os.environ, "STASHPLAN_PASSWORD": "not-the-password"}
    ahead = subprocess.run(
        [sys.executable, "-m", "stashplan", "pg", "wal-push", "-r", repo, "--spool", str(spool), str(wal / names[1])],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ahead.returncode == 0 and f"{names[1]}: pushed ahead" in ahead.stderr
    # a file changed since it was pushed ahead is pushed again, and the conflict refused
    (wal / names[2]).write_bytes(os.urandom(8192))
    changed = stashplan("pg", "wal-push", "-r", repo, "--spool", str(spool), str(wal / names[2]))
    assert changed.returncode == 1 and "already holds a different file" in changed.stderr
