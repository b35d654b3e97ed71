"""A restic repository is read within bounds: a zstd bomb or an absurd length is one line naming the blob and
its pack (no allocation, no traceback), and trees of any depth are walked without recursion by restore,
snapshots, check and migrate."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from stashplan.repository.cli import app
from tests.fixtures.restic import PASSWORD, Restic
from tests.fixtures.restic_craft import Blob, Crafter, deep_chain, file_node, remove_deep, tree_blob

pytestmark = pytest.mark.heavy

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Restic:
    r = Restic(Path("/usr/bin/restic"), tmp_path / "restic-repo", tmp_path / "cache")
    r("init", "--repository-version", "2")
    r.backup_stdin(b"a legitimate snapshot\n")
    return r


@pytest.fixture
def deep_tmp(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, its deep trees removed afterwards (pytest's own cleanup cannot remove them)."""
    yield tmp_path
    for child in tmp_path.iterdir():
        remove_deep(child)


def cli(r: Restic, *args: str) -> object:
    return runner.invoke(app, [*args, "--repo", f"local:{r.repo}"], env={"STASHPLAN_PASSWORD": PASSWORD})


def _bomb(size: int, *, declared: bool) -> bytes:
    """A zstd frame of `size` zero bytes, made without holding them (with or without its content size)."""
    out = io.BytesIO()
    compressor = zstandard.ZstdCompressor(write_content_size=declared)
    with compressor.stream_writer(out, size=size if declared else -1, closefd=False) as writer:
        piece = bytes(1 << 20)
        for _ in range(size >> 20):
            writer.write(piece)
    return out.getvalue()


def _one_file_snapshot(crafter: Crafter, blob: Blob, size: int, **pack: object) -> tuple[str, str]:
    tree = tree_blob([file_node("dumpfile.sql", [blob.id], size)])
    pack_id = crafter.pack([blob, tree], **pack)  # type: ignore[arg-type]
    return crafter.snapshot(tree.id), pack_id


def _restore_rss(r: Restic, snapshot: str, target: Path) -> tuple[int, str, int]:
    """Exit code, stderr and peak RSS (MB) of `stashplan repo restore` in its own process. The peak is VmHWM of
    the process's own memory: ru_maxrss would carry over the peak of the pytest process it was forked from."""
    code = (
        "import re, sys\n"
        "from stashplan.repository.cli import app\n"
        "try:\n    app(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        "    print(f'RSS {hwm // 1024}', file=sys.stderr)\n"
        "    raise\n"
    )
    env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, "restore", snapshot, "--target", str(target), "--repo", f"local:{r.repo}"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    return done.returncode, "\n".join(lines[:-1]), int(lines[-1].split()[1])


@pytest.mark.parametrize("declared", [True, False], ids=["size-in-header", "size-unknown"])
def test_zstd_bomb_is_refused_within_its_recorded_length(repo: Restic, tmp_path: Path, declared: bool) -> None:
    crafter = Crafter(repo.repo, PASSWORD)
    plain = b"the blob its id promises\n"
    # 1 GiB of zeros in ~40 kB, recorded as restic's largest data blob (so that its stored length is plausible)
    bomb = Blob("data", plain, stored_plain=_bomb(1 << 30, declared=declared), raw_length=8 << 20)
    snap, pack = _one_file_snapshot(crafter, bomb, len(plain))
    code, stderr, rss = _restore_rss(repo, snap[:8], tmp_path / "out.sql")
    assert code == 1
    assert stderr.startswith("error: ") and len(stderr.splitlines()) == 1, stderr
    assert f"data blob {bomb.id.hex()[:16]} in pack {pack[:8]} is corrupt" in stderr
    assert rss < 300, f"restore peaked at {rss} MB"
    assert not (tmp_path / "out.sql").exists()


@pytest.mark.parametrize(
    ("recorded", "message"),
    [({"index_lengths": True}, "has stored length 1099511627776"), ({"raw_length": 1 << 40}, "has length 1099511627776")],
    ids=["stored-length", "uncompressed-length"],
)
def test_absurd_index_length_is_one_line_naming_pack_and_blob(
    repo: Restic, tmp_path: Path, recorded: dict, message: str
) -> None:
    crafter = Crafter(repo.repo, PASSWORD)
    blob = Blob("data", b"ordinary data\n", raw_length=recorded.get("raw_length"))
    lengths = {blob.id: 1 << 40} if "index_lengths" in recorded else None
    snap, pack = _one_file_snapshot(crafter, blob, len(blob.plain), index_lengths=lengths)
    for args in (["restore", snap[:8], "--target", str(tmp_path / "out")], ["snapshots"], ["check"]):
        result = cli(repo, *args)
        assert result.exit_code == 1, (args, result.output)  # type: ignore[attr-defined]
        assert result.exception is None or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
        assert message in result.output and f"blob {blob.id.hex()[:16]} in pack {pack[:8]}" in result.output  # type: ignore[attr-defined]
    assert not (tmp_path / "out").exists()


def _walk_down(root: Path, name: str) -> tuple[int, bytes, list[tuple[int, int]]]:
    """Depth of the chain of `name` directories under `root`, the content of its "leaf" file, and the
    (mode, mtime) of every level — read through directory descriptors (deeper than PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    depth, levels = 0, []
    try:
        while True:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                break
            levels.append((st.st_mode, st.st_mtime_ns))
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = sub, depth + 1
        leaf = os.open("leaf", os.O_RDONLY, dir_fd=fd)
        with os.fdopen(leaf, "rb") as f:
            return depth, f.read(), levels
    finally:
        os.close(fd)


def _make_deep(root: Path, depth: int) -> None:
    """`depth` nested directories "a" under `root` (one level at a time: the path outgrows PATH_MAX), the
    deepest holding "leaf"; each level with its own mode and time."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    fds = []
    for level in range(depth):
        os.mkdir("a", 0o755, dir_fd=fd)
        fds.append((fd, level))
        fd = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(leaf, b"at the bottom\n")
    os.close(leaf)
    os.close(fd)
    for parent, level in reversed(fds):
        os.chmod("a", 0o700 if level % 2 else 0o750, dir_fd=parent)
        os.utime("a", ns=(1_600_000_000_000_000_000 + level, 1_500_000_000_000_000_000 + level), dir_fd=parent)
        os.close(parent)


# restic backs up a path only while it fits in PATH_MAX (4096 bytes): with one-character names relative to
# its working directory, 2047 levels below the directory it backs up. Deeper trees come from the crafter.
RESTIC_DEPTH = 2000


def test_deepest_tree_restic_backs_up_restores_as_restic_recorded_it(deep_tmp: Path) -> None:
    tmp_path = deep_tmp
    r = Restic(Path("/usr/bin/restic"), tmp_path / "restic-repo", tmp_path / "cache")
    r("init")
    src = tmp_path / "s"
    src.mkdir()
    _make_deep(src, RESTIC_DEPTH)
    env = {**os.environ, "RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": str(r.cache)}
    subprocess.run([str(r.binary), "-r", str(r.repo), "backup", "."], cwd=src, env=env, check=True, capture_output=True)
    sid = r.snapshots()[-1]["id"]
    target = tmp_path / "t"
    result = cli(r, "restore", sid[:8], "--target", str(target))  # `backup .`: the snapshot's root is src
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert _walk_down(target, "a") == _walk_down(src, "a")  # every level's mode and time, and the leaf
    for args in (["snapshots"], ["check", "--read-data"]):
        done = cli(r, *args)
        assert done.exit_code == 0, done.output  # type: ignore[attr-defined]


DEPTH = 10_000


def test_ten_thousand_levels_restore_list_check_and_migrate(repo: Restic, deep_tmp: Path) -> None:
    tmp_path = deep_tmp
    crafter = Crafter(repo.repo, PASSWORD)
    snap, _root = deep_chain(crafter, DEPTH, b"ten thousand levels down\n")
    target = tmp_path / "t"
    result = cli(repo, "restore", snap[:8], "--target", str(target))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    depth, leaf, levels = _walk_down(target, "d")
    assert (depth, leaf) == (DEPTH, b"ten thousand levels down\n")
    assert {mode & 0o7777 for mode, _t in levels} == {0o755} and levels[-1][1] == 1_704_164_645_123_456_789
    listed = cli(repo, "snapshots", "--json")
    assert listed.exit_code == 0 and snap[:8] in listed.output  # type: ignore[attr-defined]
    assert cli(repo, "check").exit_code == 0  # type: ignore[attr-defined]
    migrated = runner.invoke(
        app,
        ["migrate", "--from", f"local:{repo.repo}", "--to", f"local:{tmp_path / 'native'}", "--snapshots", snap[:8]],
        env={"STASHPLAN_PASSWORD": PASSWORD, "RESTIC_PASSWORD": PASSWORD},
    )
    assert migrated.exit_code == 0, migrated.output  # type: ignore[attr-defined]
    tar = runner.invoke(
        app, ["restore", "latest", "--repo", f"local:{tmp_path / 'native'}"], env={"STASHPLAN_PASSWORD": PASSWORD}
    )
    assert tar.exit_code == 0  # type: ignore[attr-defined]
    assert tar.stdout_bytes.count(b"ten thousand levels down\n") == 1  # type: ignore[attr-defined]
