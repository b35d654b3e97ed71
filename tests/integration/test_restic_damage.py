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
from tests.fixtures.restic import PASSWORD, Restic, params, sample

runner = CliRunner()


@pytest.fixture(params=params())
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Restic:
    """A restic repository with one --stdin snapshot of 3 MB (several data blobs)."""
    binary, repo_version = request.param
    r = Restic(binary, tmp_path / "restic-repo", tmp_path / "cache")
    r("init", "--repository-version", str(repo_version))
    r.backup_stdin(random.Random(7).randbytes(3_000_000))
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


def test_missing_pack_is_reported_by_check_and_restore(small: Restic, tmp_path: Path) -> None:
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
