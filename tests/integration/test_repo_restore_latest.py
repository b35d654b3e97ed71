"""`repo restore latest` goes by the time sealed inside each manifest, never by file names or listing order,
and refuses to guess while a snapshot file was swapped or renamed (its content no longer matches its name)."""

from __future__ import annotations

import io
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository import Repository
from stashplan.repository.cli import app

runner = CliRunner()
BASE = datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "latest-pass")
    return Repository.init(open_storage(f"local:{tmp_path}/repo"), "latest-pass", kdf=(2**14, 8, 1))


def backup(repo: Repository, payload: bytes, hours: int) -> str:
    when = BASE + timedelta(hours=hours)
    return repo.backup(io.BytesIO(payload), times=(when, when)).id


def restore_latest(repo: Repository) -> tuple[int, bytes, str]:
    result = runner.invoke(app, ["restore", "latest", "--repo", repo.storage.location, "--target", "-"])
    return result.exit_code, result.stdout_bytes, result.stderr


def test_latest_is_the_newest_sealed_time_whatever_the_order_of_writing_and_names(repo: Repository) -> None:
    # Written newest first: listing (by id) and writing order say nothing about which is the latest.
    ids = {hours: backup(repo, b"state at hour %d" % hours, hours) for hours in (5, 1, 4, 2, 3)}
    assert sorted(ids.values()) != [ids[h] for h in sorted(ids)]  # listing order is not time order
    code, out, err = restore_latest(repo)
    assert code == 0, err
    assert out == b"state at hour 5"


def test_latest_refuses_while_the_newest_snapshot_file_was_swapped_for_an_older_one(
    repo: Repository, tmp_path: Path
) -> None:
    old = backup(repo, b"old state", 1)
    new = backup(repo, b"new state", 2)
    files = tmp_path / "repo" / "snapshots"
    shutil.copyfile(files / old, files / new)  # the newest name now holds the older manifest
    code, out, err = restore_latest(repo)
    assert code == 1 and out == b""  # before: the old state, exit 0
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot be decided" in error[0] and f"snapshots/{new[:8]}" in error[0], err
    named = runner.invoke(app, ["restore", old, "--repo", repo.storage.location, "--target", "-"])
    assert named.exit_code == 0 and named.stdout_bytes == b"old state"  # naming a snapshot still works


def test_a_snapshot_file_renamed_to_another_id_is_refused(repo: Repository, tmp_path: Path) -> None:
    old = backup(repo, b"old state", 1)
    files = tmp_path / "repo" / "snapshots"
    forged = "f" * 64
    (files / old).rename(files / forged)
    result = runner.invoke(app, ["restore", forged[:8], "--repo", repo.storage.location, "--target", "-"])
    assert result.exit_code == 1 and "does not match its name" in result.stderr
    code, out, err = restore_latest(repo)
    assert code == 1 and out == b"" and "cannot be decided" in err
