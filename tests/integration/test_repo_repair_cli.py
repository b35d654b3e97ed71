"""`stashplan repo check --read-data-subset`, `repo repair index|packs|snapshots`, `repo key ...`, and
operating-system errors of the CLI (issue 9, defects 2, 7, 8), on the local backend and the S3 server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import Storage, open_storage
from stashplan.repository import Repository
from stashplan.repository.cli import app
from stashplan.repository.layout import DATA, INDEX
from tests.fixtures.s3 import S3Bucket
from tests.integration.test_repo_engine import dump

runner = CliRunner()
CHEAP_KDF = (2**14, 8, 1)  # scrypt N, r, p of the fixtures' repositories
DATA_A = dump(700_000, seed=7)


@pytest.fixture(params=["local", "s3"])
def repo_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "cli-pass")
    if request.param == "local":
        url = f"local:{tmp_path}/repo"
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        for k, v in bucket.endpoint.env().items():
            monkeypatch.setenv(k, v)
        url = bucket.repo_url("repo")
    Repository.init(open_storage(url), "cli-pass", kdf=CHEAP_KDF).close()  # scrypt's cost is not what is tested here
    yield url


@pytest.fixture
def local_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "cli-pass")
    url = f"local:{tmp_path}/repo"
    Repository.init(open_storage(url), "cli-pass", kdf=CHEAP_KDF).close()
    return url


def _storage(url: str) -> Storage:
    return open_storage(url)


def _backup(url: str, data: bytes) -> dict:
    result = runner.invoke(app, ["backup", "--stdin", "-r", url, "--json"], input=data)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _restore(url: str, ref: str, target: Path) -> bytes:
    result = runner.invoke(app, ["restore", ref, "-r", url, "--target", str(target)])
    assert result.exit_code == 0, result.output
    return target.read_bytes()


def _damage_one_pack(storage: Storage) -> str:
    name = sorted(i.name for i in storage.list(DATA))[0]
    data = bytearray(storage.get(name))
    data[len(data) // 3] ^= 0xFF
    storage.put(name, bytes(data))
    return name.rsplit("/", 1)[1]


def test_repair_packs_then_the_next_backup_of_the_same_data_restores_identically(
    repo_url: str, tmp_path: Path
) -> None:
    first = _backup(repo_url, DATA_A)
    pack = _damage_one_pack(_storage(repo_url))
    checked = runner.invoke(app, ["check", "--read-data", "-r", repo_url])
    assert checked.exit_code == 1 and pack in checked.stderr
    repaired = runner.invoke(app, ["repair", "packs", "-r", repo_url])
    assert repaired.exit_code == 0, repaired.output
    assert f"pack {pack}:" in repaired.stdout and f"deleted pack {pack}" in repaired.stdout
    second = _backup(repo_url, DATA_A)
    assert _restore(repo_url, second["id"], tmp_path / "b.sql") == DATA_A
    assert _restore(repo_url, first["id"], tmp_path / "a.sql") == DATA_A  # whole again
    final = runner.invoke(app, ["check", "--read-data", "-r", repo_url])
    assert final.exit_code == 0, final.output


def test_repair_index_rebuilds_it_from_the_pack_headers(repo_url: str, tmp_path: Path) -> None:
    snap = _backup(repo_url, DATA_A)
    storage = _storage(repo_url)
    for info in list(storage.list(INDEX)):
        storage.delete(info.name)
    broken = runner.invoke(app, ["restore", snap["id"], "-r", repo_url, "--target", str(tmp_path / "x")])
    assert broken.exit_code == 1 and not (tmp_path / "x").exists()
    repaired = runner.invoke(app, ["repair", "index", "-r", repo_url])
    assert repaired.exit_code == 0 and "index rebuilt" in repaired.stdout, repaired.output
    assert _restore(repo_url, snap["id"], tmp_path / "ok.sql") == DATA_A
    assert runner.invoke(app, ["check", "--read-data", "-r", repo_url]).exit_code == 0


def test_repair_snapshots_removes_the_snapshots_whose_data_is_gone(local_url: str, tmp_path: Path) -> None:
    kept = _backup(local_url, b"small and safe")
    lost = _backup(local_url, DATA_A)
    storage = _storage(local_url)
    for info in list(storage.list(DATA)):
        if info.size > 100_000:
            storage.delete(info.name)
    assert runner.invoke(app, ["repair", "index", "-r", local_url]).exit_code == 0
    dry = runner.invoke(app, ["repair", "snapshots", "--dry-run", "-r", local_url])
    assert f"would remove snapshot {lost['short_id']}" in dry.stdout
    done = runner.invoke(app, ["repair", "snapshots", "-r", local_url])
    assert f"removed snapshot {lost['short_id']}" in done.stdout and kept["short_id"] not in done.stdout
    listed = json.loads(runner.invoke(app, ["snapshots", "-r", local_url, "--json"]).stdout)
    assert [s["id"] for s in listed] == [kept["id"]]
    assert runner.invoke(app, ["check", "--read-data", "-r", local_url]).exit_code == 0
    assert _restore(local_url, kept["id"], tmp_path / "k") == b"small and safe"


def test_check_read_data_subset_reads_a_share_and_refuses_bad_syntax(local_url: str) -> None:
    _backup(local_url, DATA_A)
    whole = runner.invoke(app, ["check", "--read-data-subset", "1/1", "-r", local_url])
    packs = len(list(_storage(local_url).list(DATA)))
    assert whole.exit_code == 0 and f"{packs} packs and" in whole.stdout, whole.output
    assert runner.invoke(app, ["check", "--read-data-subset", "10%", "-r", local_url]).exit_code == 0
    bad = runner.invoke(app, ["check", "--read-data-subset", "3/2", "-r", local_url])
    assert bad.exit_code == 1 and bad.stderr.strip() == (
        "error: --read-data-subset '3/2': n/m needs 1 <= n <= m"
    )


def test_key_add_passwd_and_remove_rotate_the_password_without_rewriting_data(
    local_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = _backup(local_url, DATA_A)
    before = {i.name: i.size for i in _storage(local_url).list(DATA)}
    new_file = tmp_path / "new-pass"
    new_file.write_text("second-pass\n")
    added = runner.invoke(app, ["key", "add", "--new-password-file", str(new_file), "-r", local_url])
    assert added.exit_code == 0, added.output
    listed = json.loads(runner.invoke(app, ["key", "list", "--json", "-r", local_url]).stdout)
    assert len(listed) == 2 and sum(k["current"] for k in listed) == 1
    current = next(k for k in listed if k["current"])
    refused = runner.invoke(app, ["key", "remove", current["id"][:8], "-r", local_url])
    assert refused.exit_code == 1 and "key passwd" in refused.stderr
    monkeypatch.setenv("STASHPLAN_NEW_PASSWORD", "third-pass")
    assert runner.invoke(app, ["key", "passwd", "-r", local_url]).exit_code == 0
    assert runner.invoke(app, ["snapshots", "-r", local_url]).exit_code == 1  # old password gone
    monkeypatch.setenv("STASHPLAN_PASSWORD", "third-pass")
    assert _restore(local_url, snap["id"], tmp_path / "r.sql") == DATA_A
    monkeypatch.setenv("STASHPLAN_PASSWORD", "second-pass")
    assert _restore(local_url, snap["id"], tmp_path / "r2.sql") == DATA_A
    assert {i.name: i.size for i in _storage(local_url).list(DATA)} == before


# --- operating-system errors and files at rest (local) ---------------------------------------------


def test_repository_files_and_restored_files_are_private(local_url: str, tmp_path: Path) -> None:
    snap = _backup(local_url, b"secret rows")
    for path in (tmp_path / "repo").rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    _restore(local_url, snap["id"], tmp_path / "out.sql")
    assert stat.S_IMODE((tmp_path / "out.sql").stat().st_mode) == 0o600


def test_restore_into_a_missing_directory_is_one_line_naming_the_path(local_url: str, tmp_path: Path) -> None:
    snap = _backup(local_url, b"rows")
    target = tmp_path / "no-such-dir" / "out.sql"
    result = runner.invoke(app, ["restore", snap["id"], "-r", local_url, "--target", str(target)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "no-such-dir") in lines[0]
    assert "No such file or directory" in lines[0]


def test_failed_restore_leaves_no_partial_target(local_url: str, tmp_path: Path) -> None:
    snap = _backup(local_url, DATA_A)
    _damage_one_pack(_storage(local_url))
    target = tmp_path / "out.sql"
    result = runner.invoke(app, ["restore", snap["id"], "-r", local_url, "--target", str(target)])
    assert result.exit_code == 1 and "corrupt" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_disk_full_during_backup_is_one_line_and_leaves_the_repository_consistent(
    local_url: str, tmp_path: Path
) -> None:
    # The kernel refuses writes past RLIMIT_FSIZE (EFBIG), as it refuses them on a full disk (ENOSPC).
    limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); " \
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY)); "  # fmt: skip
    code = limit + "from stashplan.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "repo", "backup", "--stdin", "-r", local_url],
        input=DATA_A,
        capture_output=True,
        env={**os.environ, "STASHPLAN_PASSWORD": "cli-pass"},
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "File too large" in lines[0] and str(tmp_path / "repo") in lines[0], lines
    leftovers = [p for p in (tmp_path / "repo").rglob(".tmp-*")]
    assert leftovers == []
    assert json.loads(runner.invoke(app, ["snapshots", "--json", "-r", local_url]).stdout) == []
    assert runner.invoke(app, ["check", "-r", local_url]).exit_code == 0


def test_prune_removes_temp_files_left_by_killed_writes(local_url: str, tmp_path: Path) -> None:
    _backup(local_url, b"rows")
    left = tmp_path / "repo" / "data" / ".tmp-killed"
    left.parent.mkdir(exist_ok=True)
    left.write_bytes(b"half a pack")
    os.utime(left, (0, 0))
    result = runner.invoke(app, ["prune", "-r", local_url])
    assert result.exit_code == 0 and "1 leftovers of interrupted writes removed" in result.stdout
    assert not left.exists()


def test_init_calibrates_scrypt_to_at_least_the_work_restic_chooses(tmp_path: Path) -> None:
    restic_repo = tmp_path / "restic"
    subprocess.run(
        ["restic", "init", "-q", "-r", str(restic_repo)],
        env={**os.environ, "RESTIC_PASSWORD": "pw"},
        check=True,
        capture_output=True,
    )
    theirs = json.loads(next((restic_repo / "keys").iterdir()).read_text())
    storage = open_storage(f"local:{tmp_path}/ours")
    Repository.init(storage, "pw")
    ours = json.loads(storage.get(next(iter(storage.list("keys/"))).name))
    assert ours["N"] * ours["r"] * ours["p"] >= theirs["N"] * theirs["r"] * theirs["p"], (ours, theirs)
