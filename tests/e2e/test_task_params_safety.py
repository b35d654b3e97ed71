"""Task params cannot defeat the dump or run commands: each tool's allow-list is checked when planning (the
BackupConfiguration is Invalid, naming the param and the option) and again by the transfer in the Job;
`backupCMD` is a tool name only; a dump of zero bytes is a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from providers.databases import ProcessSpec
from stashplan.cli import app
from stashplan.errors import TransferError
from stashplan.repository import Repository
from stashplan.transfer.pipe import ProcessReader
from stashplan.transfer.run import TransferOptions, backup
from tests.fixtures.examples import copy_examples
from tests.fixtures.transfer import StashWorld

runner = CliRunner()

POSTGRES = """
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: app-db, namespace: demo}
spec:
  type: kubedb.com/postgres
  clientConfig: {url: "postgresql://127.0.0.1:5432/"}
"""


def with_params(tmp_path: Path, params: dict[str, str], postgres: bool) -> Path:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    path = manifests / "backupconfiguration.yaml"
    config = yaml.safe_load(path.read_text())
    if postgres:
        (manifests / "appbinding.yaml").write_text(POSTGRES)
        config["spec"]["task"] = {"name": "postgres-backup-15"}
    config["spec"]["task"]["params"] = [{"name": k, "value": v} for k, v in params.items()]
    path.write_text(yaml.safe_dump(config))
    return manifests


@pytest.mark.parametrize("params,postgres,message", [
    ({"args": "--file=/tmp/plain.sql"}, True,
     "task param args: option --file is not allowed for pg_dumpall: it writes output somewhere other than the backup stream"),
    ({"args": "-cmd '.output /tmp/x.sql'"}, False, "task param args: option -cmd is not allowed for sqlite3: it runs commands"),
    ({"args": "-cmd '.shell touch /tmp/x'"}, False, "task param args: option -cmd is not allowed for sqlite3: it runs commands"),
    ({"args": "--cmd=.shell"}, False, "task param args: option -cmd is not allowed for sqlite3: it runs commands"),
    ({"backupCMD": "/tmp/evil/pg_dump"}, True,
     "task param backupCMD: must be one of pg_dumpall, pg_dump (a tool name, found on PATH), not '/tmp/evil/pg_dump'"),
    ({"backupCMD": "pg_dump", "args": "--host=evil.example.com"}, True,
     "task param args: option --host is not allowed for pg_dump: it changes the connection target"),
    ({"args": "--schema=public"}, True,  # pg_dumpall reads --schema as its --schema-only, which takes no value
     "task param args: pg_dumpall would refuse it: option '--schema' (--schema-only) doesn't allow an argument"),
    ({"backupCMD": "pg_dump", "args": "-ap5499"}, True,  # getopt reads -a -p 5499
     "task param args: option -p (--port) is not allowed for pg_dump: it changes the connection target"),
])
def test_plan_refuses_task_params_that_redirect_run_or_retarget(
    tmp_path: Path, params: dict[str, str], postgres: bool, message: str
) -> None:
    manifests = with_params(tmp_path, params, postgres)
    state = str(tmp_path / "state.db")
    result = runner.invoke(app, ["plan", "-f", str(manifests), "--state", state])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out  # an Invalid object is an error (issue 22): exit 1, one line naming it
    assert f"phase Invalid: {message}" in out
    assert f"error: BackupConfiguration demo/app-db-backup: {message}" in out
    assert "CronJob/demo/stash-trigger-app-db-backup" not in out  # nothing would ever run it
    result = runner.invoke(app, ["apply", "-f", str(manifests), "--state", state, "--auto-approve"])
    assert result.exit_code == 1  # the rest is applied; the configuration is stored Invalid
    result = runner.invoke(app, ["trigger", "app-db-backup", "-n", "demo", "--state", state])
    assert result.exit_code == 0  # a session made by hand is skipped, never run
    result = runner.invoke(app, ["apply", "-f", str(manifests), "--state", state, "--auto-approve"])
    assert "BackupConfiguration demo/app-db-backup is not Ready" in " ".join(result.output.split())


def test_allowed_params_still_plan_a_backup(tmp_path: Path) -> None:
    manifests = with_params(tmp_path, {"backupCMD": "pg_dump", "args": "--schema=public --no-owner"}, True)
    result = runner.invoke(app, ["plan", "-f", str(manifests), "--state", str(tmp_path / "s.db")])
    assert result.exit_code == 0 and "phase Ready" in result.output, result.output


def test_the_job_refuses_a_smuggled_shell_command_and_records_no_snapshot(
    stash_world: StashWorld, sqlite_file: Path, tmp_path: Path
) -> None:
    """A Job made by hand (or by an older planner) still cannot run `.shell`: the transfer checks too."""
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    touched = tmp_path / "touched"
    proc = subprocess.run(
        [sys.executable, "-m", "stashplan", "transfer", "backup", "--namespace=demo", "--backupsession=s1",
         "--database=sqlite", f"--args=-cmd '.shell touch {touched}'"],
        capture_output=True, text=True, env={"STASHPLAN_CLUSTER": "local", "STASHPLAN_STATE": str(w.state),
                                             "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode != 0
    assert not touched.exists(), "the shell command ran"
    status = w.status("BackupSession", "s1")
    assert status["phase"] == "Failed"
    assert "option -cmd is not allowed for sqlite3: it runs commands" in status["targets"][0]["stats"][0]["error"]


def test_a_dump_of_zero_bytes_fails_and_records_no_snapshot(tmp_path: Path) -> None:
    from providers.storage.local import LocalStorage

    repo = Repository.init(LocalStorage(tmp_path / "repo"), "pw")
    reader = ProcessReader(ProcessSpec(("true",)), empty_ok=False)
    with pytest.raises(TransferError, match="true exited 0 but wrote nothing"):
        repo.backup(reader, hostname="h", source="x", filename="dump.sql")
    assert list(repo.snapshots()) == []


def test_postgres_backup_of_a_real_database_is_not_empty(stash_world: StashWorld) -> None:
    w = stash_world
    w.appbinding("pg", "postgresql://127.0.0.1:5432/postgres", username="postgres")
    w.repository()
    w.backup_config("cfg", "pg")
    w.backup_session("cfg", "s1")
    result = backup(w.cluster, w.namespace, "s1", TransferOptions(database="postgres", backup_cmd="pg_dump",
                                                                   args="--schema=public --no-owner"))
    assert result.ok, result.error
