"""A restic repository that is damaged, or written to: check --read-data reports a damaged pack as
restic's own check does, restores fail naming the pack, and every write is refused leaving it untouched."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.errors import RepositoryError
from stashplan.repository.cli import app
from stashplan.repository.repo import Repository
from stashplan.repository.restic.locking import write_lock
from stashplan.repository.restic.repo import ResticRepository
from tests.fixtures.restic import PASSWORD, Restic, params, sample
from tests.fixtures.s3 import S3Bucket

runner = CliRunner()


@pytest.fixture(params=params())
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Restic:
    """A restic repository with one --stdin snapshot of 2 MB (several data blobs)."""
    binary, repo_version = request.param
    r = Restic(binary, tmp_path / "restic-repo", tmp_path / "cache")
    r("init", "--repository-version", str(repo_version))
    r.backup_stdin(random.Random(7).randbytes(2_000_000))
    return r


def cli(r: Restic, *args: str, password: str = PASSWORD) -> object:
    return runner.invoke(app, [*args, "--repo", f"local:{r.repo}"], env={"STASHPLAN_PASSWORD": password})


def test_damaged_pack_is_reported_as_restics_check_reports_it(small: Restic, tmp_path: Path) -> None:
    pack = max((p for p in (small.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    damaged = bytearray(pack.read_bytes())
    damaged[len(damaged) // 3] ^= 0x55  # inside a data blob
    pack.write_bytes(damaged)

    theirs = small("check", "--read-data", check=False)
    ours = cli(small, "check", "--read-data")

    assert theirs.returncode != 0 and pack.name in theirs.stdout.decode() + theirs.stderr.decode()
    assert ours.exit_code == 1  # type: ignore[attr-defined]
    assert f"pack {pack.name}: Pack ID does not match, want {pack.name}, got " in ours.output  # type: ignore[attr-defined]
    assert "ciphertext verification failed" in ours.output  # type: ignore[attr-defined]
    # Without --read-data the structure is intact, as restic's plain check also finds.
    assert cli(small, "check").exit_code == small("check", check=False).returncode == 0  # type: ignore[attr-defined]
    restore = cli(small, "restore", "latest", "--target", str(tmp_path / "out"))
    assert restore.exit_code == 1 and f"in pack {pack.name[:8]} is corrupt" in restore.output  # type: ignore[attr-defined]


def test_missing_pack_is_reported_by_check_and_restore(stash_repo: Restic, tmp_path: Path) -> None:
    small = stash_repo
    pack = max((p for p in (small.repo / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    pack.unlink()
    ours = cli(small, "check")
    assert ours.exit_code == 1 and f"pack {pack.name}: does not exist" in ours.output  # type: ignore[attr-defined]
    restore = cli(small, "restore", "latest", "--target", str(tmp_path / "out"))
    assert restore.exit_code == 1 and f"pack {pack.name[:8]} is missing" in restore.output  # type: ignore[attr-defined]


@pytest.fixture
def stash_repo(tmp_path: Path) -> Restic:
    r = Restic(Path("/usr/bin/restic"), tmp_path / "restic-repo", tmp_path / "cache")
    r("init")
    r.backup_stdin(sample(1, 100_000))
    return r


def test_writes_into_a_restic_repository_are_refused(stash_repo: Restic) -> None:
    r = stash_repo
    before = sorted(p.name for p in r.repo.rglob("*") if p.is_file())
    for args in (["forget", "--keep-last", "1"], ["prune"], ["unlock"]):
        result = cli(r, *args)
        assert result.exit_code == 1, args  # type: ignore[attr-defined]
        assert "restic repository" in result.output and "stashplan repo migrate" in result.output  # type: ignore[attr-defined]
    backup = runner.invoke(
        app,
        ["backup", "--stdin", "--repo", f"local:{r.repo}"],
        input=b"data",
        env={"STASHPLAN_PASSWORD": PASSWORD},
    )
    assert backup.exit_code == 1 and "backup is refused" in backup.output
    with pytest.raises(RepositoryError, match="which stashplan only reads"):
        Repository.open_or_init(open_storage(f"local:{r.repo}"), PASSWORD)
    assert sorted(p.name for p in r.repo.rglob("*") if p.is_file()) == before
    assert r("check").returncode == 0


def test_wrong_password_is_one_clear_line(stash_repo: Restic) -> None:
    result = cli(stash_repo, "snapshots", password="nope")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    assert result.output.strip() == f"error: wrong password for restic repository local:{stash_repo.repo}"  # type: ignore[attr-defined]


def test_old_s3_layout_repository_is_read(tmp_path: Path) -> None:
    """restic's S3 legacy layout (key/, snapshot/, packs directly under data/), as old Stash S3 repos have."""
    r = Restic(Path("/usr/bin/restic"), tmp_path / "legacy", tmp_path / "cache")
    r("-o", "local.layout=s3legacy", "init")
    data = sample(9, 500_000)
    r("-o", "local.layout=s3legacy", "backup", "--stdin", "--stdin-filename", "dumpfile.sql", stdin=data)
    assert (r.repo / "key").is_dir() and (r.repo / "snapshot").is_dir()
    out = tmp_path / "out.sql"
    assert cli(r, "restore", "latest", "--target", str(out)).exit_code == 0  # type: ignore[attr-defined]
    assert out.read_bytes() == data
    assert cli(r, "check", "--read-data").exit_code == 0  # type: ignore[attr-defined]


def test_restic_repository_on_s3_is_read(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """restic writes to a real S3 API server; stashplan reads it through its s3 storage."""
    url = s3_bucket.repo_url("stash/pg")
    r = Restic(Path("/usr/bin/restic"), tmp_path / "unused", tmp_path / "cache", url=url)
    env_keys = s3_bucket.endpoint.env()
    data = sample(11, 700_000)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env_keys.items():
            mp.setenv(k, v)
        r("init")
        r.backup_stdin(data)
        out = tmp_path / "out.sql"
        for args in (["restore", "latest", "--target", str(out)], ["check", "--read-data"]):
            result = runner.invoke(app, [*args, "--repo", url], env={"STASHPLAN_PASSWORD": PASSWORD})
            assert result.exit_code == 0, result.output
        assert out.read_bytes() == data


def test_reading_holds_a_restic_lock_that_restic_prune_respects(stash_repo: Restic) -> None:
    r = stash_repo
    opened = ResticRepository.open(open_storage(f"local:{r.repo}"), PASSWORD)
    with opened.reading():
        held = list((r.repo / "locks").iterdir())
        assert len(held) == 1
        pruning = r("prune", check=False)
        assert pruning.returncode != 0 and b"locked" in pruning.stderr
    assert not any((r.repo / "locks").iterdir())
    assert r("prune").returncode == 0


def test_restore_refuses_while_restic_holds_an_exclusive_lock(stash_repo: Restic, tmp_path: Path) -> None:
    r = stash_repo
    opened = ResticRepository.open(open_storage(f"local:{r.repo}"), PASSWORD)
    write_lock(opened.storage, opened.key, opened.layout, exclusive=True)  # as restic prune writes it
    theirs = r("backup", "--stdin", stdin=b"x", check=False)
    assert theirs.returncode != 0 and b"locked exclusively" in theirs.stderr
    ours = cli(r, "restore", "latest", "--target", str(tmp_path / "out"))
    assert ours.exit_code == 1 and "locked exclusively by pid" in ours.output  # type: ignore[attr-defined]
    r("unlock", "--remove-all")
    assert cli(r, "restore", "latest", "--target", str(tmp_path / "out")).exit_code == 0  # type: ignore[attr-defined]
