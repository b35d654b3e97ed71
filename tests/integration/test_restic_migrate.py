"""`stashplan repo migrate`: restic snapshots (as Stash takes them) copied into a stashplan repository with
their time, host and tags, restorable there byte-identical; reruns resume; retention then works there.
Snapshots of files become tar archives that GNU tar extracts to the tree restic's own restore writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stashplan.repository.cli import app
from stashplan.repository.restic.snapshots import parse_time
from tests.fixtures.restic import ODD_NAME, PASSWORD, Restic, make_volume, params, sample, tree_facts

runner = CliRunner()
TARGET_PASSWORD = "new-stashplan-password"


@pytest.fixture(params=params(all_pairs=False))
def source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Restic, dict[str, bytes]]:
    binary, repo_version = request.param
    r = Restic(binary, tmp_path / "stash-repo", tmp_path / "cache")
    r("init", "--repository-version", str(repo_version))
    streams = {}
    for i, (host, tags) in enumerate([("host-0", ("daily",)), ("host-0", ()), ("host-1", ("weekly", "x"))]):
        data = sample(10 + i, 400_000 + i * 100_000)
        streams[r.backup_stdin(data, host=host, tags=tags)] = data
    full = {s["short_id"]: s["id"] for s in r.snapshots()}
    return r, {full[k[:8]]: v for k, v in streams.items()}


def migrate(r: Restic, target: Path, *extra: str) -> object:
    password_file = target.parent / "from-password"
    password_file.write_text(PASSWORD + "\n")
    return runner.invoke(
        app,
        [
            "migrate",
            "--from",
            f"local:{r.repo}",
            "--from-password-file",
            str(password_file),
            "--to",
            f"local:{target}",
            *extra,
        ],
        env={"STASHPLAN_PASSWORD": TARGET_PASSWORD},
    )


def target_cli(target: Path, *args: str) -> object:
    return runner.invoke(
        app, [*args, "--repo", f"local:{target}"], env={"STASHPLAN_PASSWORD": TARGET_PASSWORD}
    )


def test_migrate_keeps_time_host_tags_and_restores_byte_identical(
    source: tuple[Restic, dict[str, bytes]], tmp_path: Path
) -> None:
    r, streams = source
    target = tmp_path / "stashplan-repo"
    result = migrate(r, target)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "copied 3 snapshots, 0 already copied before" in result.output  # type: ignore[attr-defined]

    listed = json.loads(target_cli(target, "snapshots", "--json").output)  # type: ignore[attr-defined]
    by_source = {s["source"]: s for s in listed}
    for snap in r.snapshots():
        mine = by_source[f"restic:{snap['id']}"]
        assert mine["time"] == parse_time(snap["time"]).isoformat()
        assert mine["hostname"] == snap["hostname"] and mine["tags"] == (snap.get("tags") or [])
        assert mine["filename"] == "dumpfile.sql"
        out = tmp_path / f"{snap['id']}.sql"
        restored = target_cli(target, "restore", mine["id"], "--target", str(out))
        assert restored.exit_code == 0 and "blake3-chunks verified" in restored.output  # type: ignore[attr-defined]
        assert out.read_bytes() == streams[snap["id"]]

    again = migrate(r, target)
    assert "copied 0 snapshots, 3 already copied before" in again.output  # type: ignore[attr-defined]
    forget = target_cli(target, "forget", "--keep-last", "1", "--prune")
    assert forget.exit_code == 0, forget.output  # type: ignore[attr-defined]
    assert len(json.loads(target_cli(target, "snapshots", "--json").output)) == 2  # type: ignore[attr-defined]
    assert r("check", "--read-data").returncode == 0  # the source is untouched


def test_file_snapshots_migrate_as_tar_archives_that_extract_to_the_same_tree(
    source: tuple[Restic, dict[str, bytes]], tmp_path: Path
) -> None:
    r, streams = source
    volume = make_volume(tmp_path)
    r("backup", str(volume), "--host", "volume-host", "--tag", "files")
    (volume / "app" / "run.sh").write_text("#!/bin/sh\necho changed\n")
    r("backup", str(volume), "--host", "volume-host")
    first, second = [s for s in r.snapshots() if s["hostname"] == "volume-host"]
    target = tmp_path / "stashplan-repo"
    chosen = migrate(r, target, "--snapshots", f"{first['id'][:8]},{next(iter(streams))[:10]}")
    assert chosen.exit_code == 0, chosen.output  # type: ignore[attr-defined]
    assert "copied 2 snapshots" in chosen.output and "warning" not in chosen.output  # type: ignore[attr-defined]
    result = migrate(r, target)
    assert "copied 3 snapshots, 2 already copied before" in result.output  # type: ignore[attr-defined]

    listed = {s["source"]: s for s in json.loads(target_cli(target, "snapshots", "--json").output)}  # type: ignore[attr-defined]
    tars = [listed[f"restic:{first['id']}"], listed[f"restic:{second['id']}"]]
    assert [t["filename"] for t in tars] == [f"{volume}.tar"] * 2  # one retention group, as restic's paths
    assert tars[0]["tags"] == ["files"] and tars[0]["hostname"] == "volume-host"
    assert tars[0]["time"] == parse_time(first["time"]).isoformat()
    for tar, snap in zip(tars, (first, second), strict=True):
        archive = tmp_path / f"{snap['id']}.tar"
        restored = target_cli(target, "restore", tar["id"], "--target", str(archive))
        assert restored.exit_code == 0 and "blake3-chunks verified" in restored.output  # type: ignore[attr-defined]
        by_restic, by_tar = tmp_path / f"restic-{snap['id']}", tmp_path / f"tar-{snap['id']}"
        r("restore", snap["id"], "--target", str(by_restic))
        by_tar.mkdir()
        subprocess.run(["tar", "-x", "-f", str(archive), "-C", str(by_tar)], check=True)  # GNU tar
        inside = volume.relative_to("/")
        assert tree_facts(by_tar / inside) == tree_facts(by_restic / inside)
    assert (by_tar / inside / ODD_NAME).read_bytes() == b"odd"
    assert "echo changed" in (by_tar / inside / "app" / "run.sh").read_text()
