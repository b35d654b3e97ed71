"""`stashplan repo ...` in-process through typer's CliRunner, plus one subprocess smoke test."""

from __future__ import annotations

import base64
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository import Params, Repository
from stashplan.repository.cli import app
from tests.fixtures.s3 import S3Bucket

runner = CliRunner()
CHEAP_KDF = (2**14, 8, 1)  # scrypt N, r, p of the fixtures' repositories


@pytest.fixture
def repo_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "cli-pass")
    url = f"local:{tmp_path}/repo"
    # A cheap key derivation: each command opens the repository, and scrypt's cost is not what is tested here.
    Repository.init(open_storage(url), "cli-pass", kdf=CHEAP_KDF).close()
    return url


def test_init_creates_a_repository_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "cli-pass")
    url = f"local:{tmp_path}/repo"
    result = runner.invoke(app, ["init", "--repo", url])
    assert result.exit_code == 0 and "created repository" in result.output, result.output
    again = runner.invoke(app, ["init", "--repo", url])
    assert again.exit_code == 1 and f"a repository already exists at {url}" in again.stderr


def test_backup_stdin_snapshots_and_restore_round_trip(repo_url: str, tmp_path: Path) -> None:
    payload = b"COPY t (a) FROM stdin;\n" + b"".join(b"%d\n" % n for n in range(100_000))
    result = runner.invoke(
        app,
        ["backup", "--stdin", "--repo", repo_url, "--host", "pg-0", "--tag", "daily", "--json"],
        input=payload,
    )
    assert result.exit_code == 0, result.output
    snap = json.loads(result.stdout)
    assert snap["total_size"] == len(payload) and snap["hostname"] == "pg-0"
    listed = runner.invoke(app, ["snapshots", "--repo", repo_url, "--host", "pg-0"])
    assert snap["short_id"] in listed.stdout and "1 snapshots" in listed.stdout
    target = tmp_path / "out.sql"
    restored = runner.invoke(app, ["restore", snap["short_id"], "--repo", repo_url, "--target", str(target)])
    assert restored.exit_code == 0, restored.output
    assert target.read_bytes() == payload
    stats = json.loads(runner.invoke(app, ["stats", "--repo", repo_url, "--json"]).stdout)
    assert stats["snapshot_count"] == 1 and stats["raw_size"] == len(payload)
    checked = runner.invoke(app, ["check", "--read-data", "--repo", repo_url])
    assert checked.exit_code == 0 and "no errors" in checked.stdout


def test_wrong_password_is_one_line_and_exit_1(repo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "nope")
    result = runner.invoke(app, ["snapshots", "--repo", repo_url])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: wrong password for repository {repo_url}"]
    assert "nope" not in result.output


def test_password_file_is_used_instead_of_the_environment(
    repo_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STASHPLAN_PASSWORD")
    pw = tmp_path / "pw"
    pw.write_text("cli-pass\n")
    assert runner.invoke(app, ["snapshots", "--repo", repo_url, "--password-file", str(pw)]).exit_code == 0
    missing = runner.invoke(app, ["snapshots", "--repo", repo_url])
    assert missing.exit_code == 1 and "STASHPLAN_PASSWORD" in missing.stderr


def test_backup_without_stdin_flag_is_refused(repo_url: str) -> None:
    result = runner.invoke(app, ["backup", "--repo", repo_url], input=b"x")
    assert result.exit_code == 1 and "--stdin" in result.stderr


def test_forget_dry_run_lists_and_then_forget_with_prune_removes(repo_url: str) -> None:
    for n in range(3):
        assert (
            runner.invoke(
                app, ["backup", "--stdin", "-r", repo_url, "--host", "h"], input=b"v%d" % n
            ).exit_code
            == 0
        )
    dry = runner.invoke(app, ["forget", "--keep-last", "1", "--dry-run", "-r", repo_url])
    assert dry.exit_code == 0 and "would remove 2 snapshots" in dry.stdout and "last snapshot" in dry.stdout
    done = runner.invoke(app, ["forget", "--keep-last", "1", "--prune", "-r", repo_url, "--json"])
    assert len(json.loads(done.stdout)["remove"]) == 2
    assert "1 snapshots" in runner.invoke(app, ["snapshots", "-r", repo_url]).stdout
    restored = runner.invoke(app, ["restore", "latest", "-r", repo_url])
    assert restored.stdout_bytes == b"v2"
    pruned = runner.invoke(app, ["prune", "-r", repo_url])
    assert pruned.exit_code == 0 and "pruned:" in pruned.stdout


def test_check_fails_with_exit_1_when_a_pack_is_missing(repo_url: str, tmp_path: Path) -> None:
    runner.invoke(app, ["backup", "--stdin", "-r", repo_url], input=b"data" * 1000)
    pack = next((tmp_path / "repo" / "data").rglob("*"))
    while pack.is_dir():
        pack = next(pack.iterdir())
    pack.unlink()
    result = runner.invoke(app, ["check", "-r", repo_url])
    assert result.exit_code == 1 and f"pack {pack.name} is missing" in result.stderr


def test_a_stale_lock_is_removed_by_the_next_command(repo_url: str, tmp_path: Path) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    lock = {"time": "2030-01-01T00:00:00Z", "hostname": __import__("socket").gethostname(), "pid": proc.pid,
            "exclusive": True, "operation": "prune"}  # fmt: skip
    (tmp_path / "repo" / "locks").mkdir(exist_ok=True)
    (tmp_path / "repo" / "locks" / "dead").write_text(json.dumps(lock))
    assert runner.invoke(app, ["backup", "--stdin", "-r", repo_url], input=b"x").exit_code == 0
    assert not (tmp_path / "repo" / "locks" / "dead").exists()
    assert "removed 0 locks" in runner.invoke(app, ["unlock", "-r", repo_url]).stdout


def test_repository_and_secret_manifests_select_the_s3_backend(
    s3_bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STASHPLAN_PASSWORD", raising=False)
    env = s3_bucket.endpoint.env()
    secret = {
        k: base64.b64encode(v.encode()).decode() for k, v in {**env, "RESTIC_PASSWORD": "from-secret"}.items()
    }
    manifest = tmp_path / "repo.yaml"
    manifest.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s3-secret", "namespace": "demo"},
                "data": secret,
            }
        )
        + "\n---\n"
        + json.dumps(
            {
                "apiVersion": "stash.appscode.com/v1alpha1",
                "kind": "Repository",
                "metadata": {"name": "s3-repo", "namespace": "demo"},
                "spec": {
                    "backend": {
                        "s3": {
                            "endpoint": s3_bucket.endpoint.url,
                            "bucket": s3_bucket.name,
                            "prefix": "demo",
                        },
                        "storageSecretName": "s3-secret",
                    }
                },
            }
        )
    )
    assert runner.invoke(app, ["init", "-f", str(manifest)]).exit_code == 0
    backed = runner.invoke(app, ["backup", "--stdin", "-f", str(manifest)], input=b"s3 rows")
    assert backed.exit_code == 0, backed.output
    assert runner.invoke(app, ["restore", "-f", str(manifest)]).stdout_bytes == b"s3 rows"


def test_the_module_runs_as_a_program_with_plain_progress(repo_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stashplan.repository.cli", "backup", "--stdin", "--repo", repo_url],
        input=b"z" * 3_000_000,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"snapshot " in proc.stdout and b"saved" in proc.stdout


def test_prune_dry_run_lists_exactly_the_packs_prune_then_deletes_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "cli-pass")
    url = f"local:{tmp_path}/repo"
    storage = open_storage(url)
    rnd = random.Random(11)
    shared, own_a, own_b, own_c = (rnd.randbytes(1 << 20) for _ in range(4))
    params = Params(chunk_min=16384, chunk_avg=65536, chunk_max=262144, pack_size=8 << 20)
    with Repository.init(storage, "cli-pass", params, kdf=CHEAP_KDF) as repo:
        gone = repo.backup(io.BytesIO(shared + own_a))  # its pack is then partly used: repacked
        kept = repo.backup(io.BytesIO(shared + own_b))
        unused = repo.backup(io.BytesIO(own_c))  # its pack is then unused: deleted
    for snap in (gone, unused):
        storage.delete(f"snapshots/{snap.id}")
    storage.put("data/ee/" + "ee" * 32, b"an interrupted backup's pack")  # an orphan: deleted

    def listing() -> list[tuple[str, int]]:
        return sorted((i.name, i.size) for i in storage.list(""))

    before = listing()
    dry = runner.invoke(app, ["prune", "--dry-run", "-r", url])
    assert dry.exit_code == 0, dry.output
    assert listing() == before  # nothing written: no lock, no index, no pack deleted
    planned = {line.split()[0]: line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("  ")}
    assert sorted(planned.values()) == ["blobs)", "orphan", "unused"]  # "repacked (keeps n of m blobs)"
    assert "3 packs to delete (1 repacked)" in dry.stdout

    packs_before = {i.name.rsplit("/", 1)[1] for i in storage.list("data/")}
    real = runner.invoke(app, ["prune", "-r", url])
    assert real.exit_code == 0 and "pruned: 3 packs deleted, 1 repacked" in real.stdout, real.output
    packs_after = {i.name.rsplit("/", 1)[1] for i in storage.list("data/")}
    assert set(planned) == packs_before - packs_after
    target = tmp_path / "kept"
    restored = runner.invoke(app, ["restore", kept.id, "-r", url, "--target", str(target)])
    assert restored.exit_code == 0 and target.read_bytes() == shared + own_b
    assert runner.invoke(app, ["prune", "--dry-run", "-r", url]).stdout.strip() == "prune plan: nothing to delete"
