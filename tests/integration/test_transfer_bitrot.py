"""Bit rot under a running schedule: one byte of a pack flipped in place (same length). The next backup's
snapshot restores, because a read found the damage (the rolling read before a backup, or a restore) and the
backup stored the data again; the session's condition says what was verified. Local directory and S3 (moto)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import storage_from_repository
from stashplan.repository import Repository
from stashplan.repository.layout import DATA
from stashplan.transfer.cli import app
from stashplan.transfer.run import TransferOptions
from stashplan.transfer.run import backup as run_backup
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.transfer import REPO_PASSWORD, StashWorld

runner = CliRunner()
ENV = "STASHPLAN_CLUSTER", "STASHPLAN_STATE"


def sql(path: Path, statement: str) -> str:
    return subprocess.run(["sqlite3", str(path), statement], capture_output=True, text=True, check=True).stdout


def world(w: StashWorld, tmp_path: Path, backend: str, s3: S3Bucket | None) -> tuple[Path, dict]:
    db = tmp_path / "app.db"
    rows = ", ".join(f"('row {i} {i * 7919 % 1000003:08d}')" for i in range(3000))
    sql(db, f"CREATE TABLE items(name TEXT); INSERT INTO items VALUES {rows};")
    w.appbinding("app", f"sqlite://{db}")
    if backend == "s3":
        assert s3 is not None
        spec = {"s3": {"endpoint": s3.endpoint.url, "bucket": s3.name, "prefix": "demo/app"}}
        repo = w.repository(backend=spec, secret=s3.endpoint.env())
    else:
        repo = w.repository()
    w.backup_config("cfg", "app", keep_last=10)
    return db, repo


def cli_backup(w: StashWorld, session: str) -> int:
    w.backup_session("cfg", session)
    args = ["backup", "--namespace=demo", f"--backupsession={session}", "--database=sqlite", "--pushgateway-url="]
    return runner.invoke(app, args, env=dict(zip(ENV, ("local", str(w.state)), strict=True))).exit_code


def cli_restore(w: StashWorld, name: str) -> tuple[int, str]:
    w.restore_session(name, "app")
    args = ["restore", "--namespace=demo", f"--restoresession={name}", "--database=sqlite", "--snapshot=latest"]
    result = runner.invoke(app, args, env=dict(zip(ENV, ("local", str(w.state)), strict=True)))
    return result.exit_code, result.output


def flip_a_byte_of_each_pack(repo: Repository) -> int:
    """Flip one byte inside the first blob of every pack, in place (same length): bit rot."""
    flipped = 0
    for info in repo.storage.list(DATA):
        data = bytearray(repo.storage.get(info.name))
        data[40] ^= 0x01
        repo.storage.put(info.name, bytes(data))
        flipped += 1
    return flipped


def open_repo(repo_obj: dict, s3: S3Bucket | None) -> Repository:
    secret = {"RESTIC_PASSWORD": REPO_PASSWORD, **(s3.endpoint.env() if s3 else {})}
    return Repository.open(storage_from_repository(repo_obj, secret), REPO_PASSWORD)


def message(w: StashWorld, session: str) -> str:
    return str(w.condition("BackupSession", session, "RepositoryIntegrityVerified").get("message"))


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def s3(request: pytest.FixtureRequest, backend: str) -> S3Bucket | None:
    return request.getfixturevalue("s3_bucket") if backend == "s3" else None


def test_a_pack_rotting_in_place_is_found_by_the_rolling_read_and_the_next_backup_stores_its_data_again(
    stash_world: StashWorld, tmp_path: Path, backend: str, s3: S3Bucket | None
) -> None:
    w = stash_world
    db, repo_obj = world(w, tmp_path, backend, s3)
    assert cli_backup(w, "s1") == 0
    repo = open_repo(repo_obj, s3)
    assert flip_a_byte_of_each_pack(repo) >= 1

    # A day later nothing is due yet for most packs; eight days later every pack's turn has come.
    later = datetime.now(UTC) + timedelta(days=8)
    w.backup_session("cfg", "s2")
    result = run_backup(w.cluster, "demo", "s2", TransferOptions(database="sqlite"), clock=lambda: later)
    assert result.host.snapshot is not None
    assert result.host.snapshot.added_size > 0  # before: 0 B uploaded, every chunk "deduplicated" into rot
    db.unlink()
    code, out = cli_restore(w, "r1")  # latest: the snapshot of s2
    assert code == 0, out
    assert sql(db, "SELECT count(*) FROM items").strip() == "3000"

    first, second = message(w, "s1"), message(w, "s2")  # before: "repository check passed", both times
    assert first.startswith("structure checked (1 snapshot, 1 pack); 0 of 0 packs read before the backup")
    assert "(rolling, every pack within 7 days)" in first
    assert "damaged pack" in second and "stored their data again" in second, second
    assert "packs read before the backup (rolling, every pack within 7 days)" in second
    # The damage is reported (and the session Failed) although this snapshot is whole: the rot was real.
    assert w.condition("BackupSession", "s2", "RepositoryIntegrityVerified")["status"] == "False"
    check = repo.check(read_data=True)
    assert check.ok, check.errors  # the rotten packs are superseded (and marked) until prune removes them
    assert any("prune removes it" in warning for warning in check.warnings)


def test_a_restore_that_meets_rot_marks_the_pack_and_the_next_backup_stores_the_data_again(
    stash_world: StashWorld, tmp_path: Path, backend: str, s3: S3Bucket | None
) -> None:
    w = stash_world
    db, repo_obj = world(w, tmp_path, backend, s3)
    assert cli_backup(w, "s1") == 0
    repo = open_repo(repo_obj, s3)
    flip_a_byte_of_each_pack(repo)
    code, out = cli_restore(w, "r1")
    assert code == 1 and "authentication failed" in str(w.status("RestoreSession", "r1")), out

    assert cli_backup(w, "s2") == 0  # the same minute: no pack is due for the rolling read
    db.unlink()
    code, out = cli_restore(w, "r2")
    assert code == 0, out  # before: the rotten pack was reused and this restore failed too
    assert sql(db, "SELECT count(*) FROM items").strip() == "3000"
    assert w.status("BackupSession", "s2")["phase"] == "Succeeded"
    assert "; 0 of" in message(w, "s2") and "packs read before the backup" in message(w, "s2")
    repair = repo.repair_packs()  # salvages what still authenticates, deletes the rotten packs and markers
    assert any("removed marker damaged/" in line for line in repair.changed), repair.changed
    assert repo.check(read_data=True).ok
