"""`stashplan repo` on restic repositories made by restic itself (v1 and v2, --stdin and files, a
forgotten-and-pruned snapshot): listing, byte-identical restores, check, stats, and refusals of writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository.cli import app
from stashplan.repository.opening import open_repository
from stashplan.repository.restic.repo import ResticRepository
from stashplan.repository.restic.snapshots import parse_time
from tests.fixtures.restic import PASSWORD, ResticWorld, make_world, params

runner = CliRunner()


@pytest.fixture(scope="module", params=params())
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ResticWorld:
    binary, repo_version = request.param
    return make_world(binary, repo_version, tmp_path_factory.mktemp("restic"))


def repo_cli(world: ResticWorld, *args: str) -> object:
    return runner.invoke(
        app, [*args, "--repo", f"local:{world.restic.repo}"], env={"STASHPLAN_PASSWORD": PASSWORD}
    )


def test_snapshots_lists_what_restic_lists_with_time_host_tags(world: ResticWorld) -> None:
    result = repo_cli(world, "snapshots", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    ours = {s["id"]: s for s in json.loads(result.output)}  # type: ignore[attr-defined]
    theirs = {s["id"]: s for s in world.restic.snapshots()}
    assert set(ours) == set(theirs) and world.forgotten not in ours
    for sid, snap in theirs.items():
        mine = ours[sid]
        assert mine["hostname"] == snap["hostname"]
        assert mine["tags"] == (snap.get("tags") or [])
        assert mine["time"] == parse_time(snap["time"]).isoformat()
    for sid, data in world.streams.items():
        assert ours[sid]["total_size"] == len(data)
    assert ours[world.files_snapshot]["total_size"] == sum(len(d) for d in world.files.values())
    opened = open_repository(open_storage(f"local:{world.restic.repo}"), PASSWORD)
    assert isinstance(opened, ResticRepository) and opened.version == world.repo_version


def test_every_stdin_snapshot_restores_byte_identical(world: ResticWorld, tmp_path: Path) -> None:
    for sid, data in world.streams.items():
        target = tmp_path / f"{sid}.out"
        result = repo_cli(world, "restore", sid[:10], "--target", str(target))
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_files_of_a_file_snapshot_restore_by_path(world: ResticWorld, tmp_path: Path) -> None:
    for i, (path, data) in enumerate(world.files.items()):
        target = tmp_path / f"file-{i}"
        result = repo_cli(world, "restore", world.files_snapshot, "--path", path, "--target", str(target))
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        assert target.read_bytes() == data
    # Without --path a snapshot of many files is no stream for standard output: the error says what to do.
    result = repo_cli(world, "restore", world.files_snapshot)
    assert result.exit_code == 1
    assert "--target DIR" in result.output and "--path" in result.output  # type: ignore[attr-defined]
    # ... and with a --target it is restored there as a directory tree, by its full paths.
    result = repo_cli(world, "restore", world.files_snapshot, "--target", str(tmp_path / "tree"))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    for path, data in world.files.items():
        assert (tmp_path / "tree" / path.lstrip("/")).read_bytes() == data


def test_forgotten_and_pruned_snapshot_is_gone(world: ResticWorld) -> None:
    result = repo_cli(world, "restore", world.forgotten[:12], "--target", "/dev/null")
    assert result.exit_code == 1 and "not found" in result.output  # type: ignore[attr-defined]


def test_check_read_data_and_stats_on_a_healthy_repository(world: ResticWorld) -> None:
    result = repo_cli(world, "check", "--read-data")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "no errors: 4 snapshots" in result.output  # type: ignore[attr-defined]
    stats = repo_cli(world, "stats", "--json")
    assert stats.exit_code == 0, stats.output  # type: ignore[attr-defined]
    doc = json.loads(stats.output)  # type: ignore[attr-defined]
    raw = sum(len(d) for d in world.streams.values()) + sum(len(d) for d in world.files.values())
    assert doc["snapshot_count"] == 4 and doc["raw_size"] == raw and doc["pack_count"] >= 2
