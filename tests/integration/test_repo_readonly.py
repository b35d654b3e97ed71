"""Reading a repository that cannot be written (a read-only mount, a full disk, read-only credentials):
`--no-lock` restores, lists and checks it — stashplan's own format and restic's — as restic's --no-lock does;
without it a restore that must write its lock fails with one line."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository import Repository
from stashplan.repository.cli import app
from tests.fixtures.restic import PASSWORD, Restic, sample

runner = CliRunner()
CHEAP_KDF = (2**14, 8, 1)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder` made read-only for real: as root (whom permissions do not stop) a read-only bind mount of it,
    else its tree with every write bit removed. Yields the path to read it through."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        try:
            yield folder
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
        return
    mount = folder.with_name(folder.name + "-ro")
    mount.mkdir()
    subprocess.run(["mount", "--bind", str(folder), str(mount)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


def invoke(url: str, *args: str) -> object:
    return runner.invoke(app, [*args, "--repo", url], env={"STASHPLAN_PASSWORD": PASSWORD})


def _no_lock_reads(url: str, out: Path) -> None:
    for args in (["snapshots", "--no-lock"], ["check", "--no-lock", "--read-data"], ["stats", "--no-lock"]):
        result = invoke(url, *args)
        assert result.exit_code == 0, (args, result.output)  # type: ignore[attr-defined]
    restored = invoke(url, "restore", "latest", "--no-lock", "--target", str(out))
    assert restored.exit_code == 0, restored.output  # type: ignore[attr-defined]


def test_native_repository_restores_read_only_with_no_lock(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    data = sample(31, 300_000)
    with Repository.init(open_storage(f"local:{folder}"), PASSWORD, kdf=CHEAP_KDF) as repo:
        repo.backup(io.BytesIO(data), hostname="pg-0", filename="dumpfile.sql")
    with read_only(folder) as ro:
        url = f"local:{ro}"
        locked = invoke(url, "restore", "latest", "--target", str(tmp_path / "locked.sql"))
        assert locked.exit_code == 1 and "Traceback" not in locked.output  # type: ignore[attr-defined]
        assert len(locked.output.strip().splitlines()) == 1, locked.output  # type: ignore[attr-defined]
        assert "Read-only file system" in locked.output and "read with --no-lock" in locked.output  # type: ignore[attr-defined]
        _no_lock_reads(url, tmp_path / "out.sql")
    assert (tmp_path / "out.sql").read_bytes() == data


def test_restic_repository_restores_read_only_with_no_lock(tmp_path: Path) -> None:
    r = Restic(Path("/usr/bin/restic"), tmp_path / "restic-repo", tmp_path / "cache")
    r("init")
    data = sample(32, 300_000)
    r.backup_stdin(data)
    with read_only(r.repo) as ro:
        _no_lock_reads(f"local:{ro}", tmp_path / "out.sql")
        assert not any((ro / "locks").iterdir())
    assert (tmp_path / "out.sql").read_bytes() == data
