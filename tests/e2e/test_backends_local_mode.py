"""Local mode end to end through every storage backend: a SQLite database backed up by the transfer into a
Repository on gcs (fake-gcs-server), azure (Azurite), swift (Swift), b2 (b2sdk's simulator), rest
(rest-server) and local (a hostPath directory), then restored into a new file with the same rows."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.transfer import StashWorld
from tests.servers import StorageTarget


def _rows(path: Path) -> str:
    return subprocess.run(["sqlite3", str(path), "SELECT group_concat(name) FROM items"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("provider", ["gcs", "azure", "swift", "b2", "rest", "local"])
def test_sqlite_backup_then_restore_through_each_backend(
    provider: str, request: pytest.FixtureRequest, stash_world: StashWorld, sqlite_file: Path, tmp_path: Path
) -> None:
    w = stash_world
    if provider == "local":
        backend = {"local": {"mountPath": str(tmp_path / "mounted"), "hostPath": {"path": str(tmp_path)}}}
        secret: dict[str, str] = {}
    else:
        target: StorageTarget = request.getfixturevalue(f"{provider}_target")
        backend, secret = target.backend(f"e2e/{uuid.uuid4().hex[:12]}"), target.secret
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.appbinding("new-db", f"sqlite://{tmp_path}/restored.db")
    w.repository(backend=backend, secret=secret)
    w.backup_config("db-backup", "app-db")
    w.backup_session("db-backup", "s1")
    done = backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite"))
    assert done.ok, w.status("BackupSession", "s1")
    assert w.status("BackupSession", "s1")["phase"] == "Succeeded"
    assert w.status("Repository", "repo")["snapshotCount"] == 1

    w.restore_session("r1", "new-db")
    assert restore(w.cluster, w.namespace, "r1", TransferOptions(database="sqlite")).ok
    assert w.status("RestoreSession", "r1")["phase"] == "Succeeded"
    assert _rows(tmp_path / "restored.db") == "alpha,beta,gamma"
    if provider == "local":
        assert (tmp_path / "mounted" / "config").is_file()


def test_backup_with_a_wrong_storage_key_fails_naming_the_secret_key(
    rest_target: StorageTarget, stash_world: StashWorld, sqlite_file: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.repository(backend=rest_target.backend(f"e2e/{uuid.uuid4().hex[:12]}"),
                 secret={**rest_target.secret, "REST_SERVER_PASSWORD": "not-the-password"})
    w.backup_config("db-backup", "app-db")
    w.backup_session("db-backup", "s1")
    assert not backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite")).ok
    status = w.status("BackupSession", "s1")
    assert status["phase"] == "Failed"
    assert "REST_SERVER_USERNAME/REST_SERVER_PASSWORD" in str(status)
    assert "not-the-password" not in str(status)


def test_a_stash_guide_with_a_gcs_repository_plans_without_refusals(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stashplan.cli import app

    folder = Path(__file__).resolve().parents[1] / "data" / "stash-docs" / "02-mysql-standalone"
    result = CliRunner().invoke(app, ["plan", "-f", str(folder), "--state", str(tmp_path / "s.db"),
                                      "--detailed-exitcode"])
    assert result.exit_code == 2, result.output
    assert "error:" not in result.output
    assert "+ Repository/demo/gcs-repo will be created" in result.output
