"""`stashplan repo restore --target DIR` of restic file snapshots (Stash's volume backups): the same files,
modes, times, symlinks, hardlinks and FIFOs restic's own restore writes; existing files are never
overwritten; node names that would leave the target are refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository.cli import app
from stashplan.repository.restic.repo import ResticRepository
from tests.fixtures.restic import ODD_NAME, PASSWORD, Restic, make_volume, params, tree_facts

runner = CliRunner()
@pytest.fixture(scope="module", params=params(all_pairs=False))
def volume(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Restic, Path, str]:
    """One volume backup per restic version (tests may add snapshots, never change this one)."""
    binary, repo_version = request.param
    tmp_path = tmp_path_factory.mktemp("volume")
    r = Restic(binary, tmp_path / "restic-repo", tmp_path / "cache")
    r("init", "--repository-version", str(repo_version))
    src = make_volume(tmp_path)
    r("backup", str(src), "--host", "volume-host")
    return r, src, r.snapshots()[-1]["id"]


def restore(r: Restic, *args: str) -> object:
    return runner.invoke(
        app, ["restore", *args, "--repo", f"local:{r.repo}"], env={"STASHPLAN_PASSWORD": PASSWORD}
    )


def test_whole_snapshot_restores_as_restic_restore_does(volume: tuple[Restic, Path, str], tmp_path: Path) -> None:
    r, src, sid = volume
    theirs, ours = tmp_path / "by-restic", tmp_path / "by-stashplan"
    r("restore", sid, "--target", str(theirs))
    result = restore(r, sid[:8], "--target", str(ours))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    summary = result.output  # type: ignore[attr-defined]
    assert "5 files" in summary and "2 symlinks" in summary and "1 hardlinks" in summary
    restored = ours / src.relative_to("/")
    assert tree_facts(restored) == tree_facts(src)  # content, modes, times, links, hardlinks, FIFO
    assert tree_facts(restored) == tree_facts(theirs / src.relative_to("/"))
    assert (restored / ODD_NAME).read_bytes() == b"odd"


def test_a_directory_restores_its_content_into_the_target(volume: tuple[Restic, Path, str], tmp_path: Path) -> None:
    r, src, sid = volume
    target = tmp_path / "app-only"
    result = restore(r, sid, "--path", str(src / "app"), "--target", str(target))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert tree_facts(target) == tree_facts(src / "app")
    to_stdout = restore(r, sid, "--path", str(src / "app"))  # a directory is no stream for standard output
    assert to_stdout.exit_code == 1 and "--target DIR" in to_stdout.output  # type: ignore[attr-defined]
    # One named file is still a file target.
    one = tmp_path / "db.conf"
    result = restore(r, sid, "--path", str(src / "app" / "conf" / "db.conf"), "--target", str(one))
    assert result.exit_code == 0 and one.read_bytes() == (src / "app" / "conf" / "db.conf").read_bytes()  # type: ignore[attr-defined]


def test_existing_files_are_never_overwritten(volume: tuple[Restic, Path, str], tmp_path: Path) -> None:
    r, src, sid = volume
    target = tmp_path / "twice"
    assert restore(r, sid, "--path", str(src), "--target", str(target)).exit_code == 0  # type: ignore[attr-defined]
    (target / "app" / "run.sh").write_text("local change\n")
    (target / "empty").unlink()
    again = restore(r, sid, "--path", str(src), "--target", str(target))
    assert again.exit_code == 1  # type: ignore[attr-defined]
    assert "refusing to overwrite" in again.output and str(target / "app" / "run.sh") in again.output  # type: ignore[attr-defined]
    assert (target / "app" / "run.sh").read_text() == "local change\n"
    assert not (target / "empty").exists()  # refused before writing anything
    # An existing directory that would receive new files only is merged into.
    partial = tmp_path / "partial"
    (partial / "app").mkdir(parents=True)
    (partial / "app" / "mine.txt").write_text("kept")
    assert restore(r, sid, "--path", str(src), "--target", str(partial)).exit_code == 0  # type: ignore[attr-defined]
    assert (partial / "app" / "mine.txt").read_text() == "kept"
    assert (partial / "app" / "run.sh").read_text() == (src / "app" / "run.sh").read_text()


def _seal_tree_into(r: Restic, nodes: list[dict]) -> str:
    """Add a snapshot whose root tree holds `nodes` (a v1-style pack, index file and snapshot, sealed with
    the repository's key), as a damaged or hostile repository could; returns the snapshot id."""
    key = ResticRepository.open(open_storage(f"local:{r.repo}"), PASSWORD).key
    tree = json.dumps({"nodes": nodes}).encode() + b"\n"
    tree_id = hashlib.sha256(tree).digest()
    blob = key.seal(tree)
    header = key.seal(struct.pack("<BI32s", 1, len(blob), tree_id))
    pack = blob + header + struct.pack("<I", len(header))
    pack_id = hashlib.sha256(pack).hexdigest()
    (r.repo / "data" / pack_id[:2]).mkdir(exist_ok=True)
    (r.repo / "data" / pack_id[:2] / pack_id).write_bytes(pack)

    def store(folder: str, doc: dict) -> str:
        sealed = key.seal(json.dumps(doc).encode())
        name = hashlib.sha256(sealed).hexdigest()
        (r.repo / folder / name).write_bytes(sealed)
        return name

    entry = {"id": tree_id.hex(), "type": "tree", "offset": 0, "length": len(blob)}
    store("index", {"packs": [{"id": pack_id, "blobs": [entry]}]})
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return store("snapshots", {"time": now, "tree": tree_id.hex(), "paths": ["/x"], "hostname": "evil"})


def test_node_names_that_leave_the_target_are_refused(volume: tuple[Restic, Path, str], tmp_path: Path) -> None:
    r, _src, _sid = volume
    fine = {"name": "fine.txt", "type": "file", "mode": 420, "size": 0, "content": []}
    for name, why in [("../escaped", "refusing a node named '../escaped'"), ("..", "refusing a node named '..'"),
                      ("a/b", "refusing a node named 'a/b'"), ("", "refusing a node named ''"),
                      ("fine.txt", "refusing a second node named 'fine.txt'")]:
        evil = _seal_tree_into(r, [fine, {**fine, "name": name}])
        target = tmp_path / "jail" / "target"
        result = restore(r, evil[:10], "--target", str(target))
        assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
        assert why in result.output  # type: ignore[attr-defined]
        assert not (tmp_path / "jail").exists()  # nothing written, not even the target


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes and foreign owners need root")
def test_as_root_devices_and_setuid_only_with_restore_special(tmp_path: Path) -> None:
    r = Restic(Path("/usr/bin/restic"), tmp_path / "restic-repo", tmp_path / "cache")
    r("init")
    src = tmp_path / "src"
    (src / "shared").mkdir(parents=True)
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (src / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "tool", 0o4755)
    os.chmod(src / "shared", 0o2777)
    os.chown(src / "shared", 4321, 4321)
    r("backup", str(src))
    sid = r.snapshots()[-1]["id"]

    plain = tmp_path / "plain"
    (plain / "shared").mkdir(parents=True)  # an existing directory: merged into, never re-chmodded or chowned
    os.chmod(plain / "shared", 0o700)
    result = restore(r, sid, "--path", str(src), "--target", str(plain))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert not (plain / "null").exists()
    assert "null: chardev not recreated (device nodes only with --restore-special)" in result.output  # type: ignore[attr-defined]
    assert stat.S_IMODE((plain / "tool").stat().st_mode) == 0o755
    assert "tool: setuid/setgid bits not restored (pass --restore-special)" in result.output  # type: ignore[attr-defined]
    existing = (plain / "shared").stat()
    assert (stat.S_IMODE(existing.st_mode), existing.st_uid) == (0o700, 0)

    special = tmp_path / "special"
    result = restore(r, sid, "--path", str(src), "--target", str(special), "--restore-special")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    node = (special / "null").lstat()
    assert stat.S_ISCHR(node.st_mode) and node.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE((special / "tool").stat().st_mode) == 0o4755
    created = (special / "shared").stat()
    assert (stat.S_IMODE(created.st_mode), created.st_uid) == (0o2777, 4321)  # a new directory gets its owner and mode
