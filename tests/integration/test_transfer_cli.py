"""`stashplan transfer backup|restore` as the Job runs it: flags, env-selected local cluster, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from stashplan.transfer.cli import app
from tests.fixtures.transfer import StashWorld


def env_for(w: StashWorld) -> dict[str, str]:
    return {"STASHPLAN_CLUSTER": "local", "STASHPLAN_STATE": str(w.state)}


def test_backup_and_restore_commands_in_process(
    stash_world: StashWorld, sqlite_file: Path, tmp_path: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.appbinding("new-db", f"sqlite://{tmp_path}/new.db")
    w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    runner = CliRunner()
    args = [
        "backup",
        "--namespace=demo",
        "--backupsession=s1",
        "--database=sqlite",
        "--backup-cmd=",
        "--args=",
        "--wait-timeout=",
        "--hostname=",
        "--pushgateway-url=",
    ]
    result = runner.invoke(app, args, env=env_for(w))
    assert result.exit_code == 0, result.output
    assert "BackupSession s1: Succeeded snapshot" in result.output
    w.restore_session("r1", "new-db")
    args = [
        "restore",
        "--namespace=demo",
        "--restoresession=r1",
        "--database=sqlite",
        "--args=",
        "--wait-timeout=30",
        "--hostname=host-0",
        "--source-hostname=",
        "--snapshot=latest",
    ]
    result = runner.invoke(app, args, env=env_for(w))
    assert result.exit_code == 0, result.output
    assert w.status("RestoreSession", "r1")["phase"] == "Succeeded"
    rows = subprocess.run(
        ["sqlite3", f"{tmp_path}/new.db", "SELECT count(*) FROM items"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert rows == "3"


def test_failed_backup_exits_1_and_unknown_session_exits_2(stash_world: StashWorld, tmp_path: Path) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{tmp_path}/absent.db")
    w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["backup", "--namespace=demo", "--backupsession=s1", "--database=sqlite", "--wait-timeout=1"],
        env=env_for(w),
    )
    assert result.exit_code == 1
    assert w.status("BackupSession", "s1")["phase"] == "Failed"
    result = runner.invoke(
        app, ["backup", "--namespace=demo", "--backupsession=nope", "--database=sqlite"], env=env_for(w)
    )
    assert result.exit_code == 2
    assert "BackupSession demo/nope not found" in result.output


def test_backup_command_as_a_subprocess_with_local_cluster_env(
    stash_world: StashWorld, sqlite_file: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stashplan.transfer.cli",
            "backup",
            "--namespace=demo",
            "--backupsession=s1",
            "--database=sqlite",
            "--wait-timeout=30",
            "--hostname=host-0",
        ],
        env={**os.environ, **env_for(w)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status = w.status("BackupSession", "s1")
    assert status["phase"] == "Succeeded"
    assert status["targets"][0]["stats"][0]["snapshots"][0]["name"] in done.stdout
