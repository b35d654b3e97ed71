"""Secrets stay where they are: a local Job gets only its own environment, never the loop's; hook output, error
tails, conditions, Events and Job logs are masked against every Secret value the session sees; `get secret`
masks data unless --show-secrets; credentials in storage URLs are redacted in errors. Real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.cluster.local.controllers import JobRunner
from stashplan.cluster.local.store import LocalCluster
from stashplan.secrets import MASK
from stashplan.transfer.context import PodInputs
from stashplan.transfer.run import TransferOptions, backup
from tests.fixtures.databases import PgDatabase
from tests.fixtures.transfer import StashWorld, kubelet_gives

LOOP_SECRETS = {"AWS_SECRET_ACCESS_KEY": "loop-aws-secret-value", "STASHPLAN_PASSWORD": "loop-repo-password"}


def run_job(tmp_path: Path, container: dict) -> tuple[dict, str]:
    """Run one Job of `container` in namespace demo with the local JobRunner; (its status, its log)."""
    cluster = LocalCluster(tmp_path / "state.db")
    try:
        cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook-secret", "namespace": "demo"},
                        "stringData": {"TOKEN": "pod-token-value"}})
        cluster.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe", "namespace": "demo"},
                        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}})
        runner = JobRunner(cluster, {"STASHPLAN_CLUSTER": "local"}, tmp_path / "logs")
        runner.tick(datetime.now(UTC))
        runner.wait_all(30)
        runner.tick(datetime.now(UTC))
        status = cluster.get("Job", "demo", "probe")["status"]
    finally:
        cluster.close()
    return status, (tmp_path / "logs" / "demo_probe.log").read_text()


def test_a_local_job_gets_its_own_environment_never_the_loops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in LOOP_SECRETS.items():
        monkeypatch.setenv(key, value)
    status, log = run_job(tmp_path, {"name": "env", "command": ["sh", "-c", "env"],
                                     "env": [{"name": "MINE", "value": "mine"}],
                                     "envFrom": [{"prefix": "P_", "secretRef": {"name": "hook-secret"}}]})
    assert status.get("succeeded") == 1, log
    assert "MINE=mine" in log and "PATH=" in log and "STASHPLAN_CLUSTER=local" in log
    assert f"P_TOKEN={MASK}" in log  # its own Secret reaches it (and is masked in its log)
    for key, value in LOOP_SECRETS.items():
        assert key not in log and value not in log


def test_a_jobs_failure_tail_and_log_are_masked_against_its_secrets(tmp_path: Path) -> None:
    status, log = run_job(tmp_path, {
        "name": "fails", "command": ["sh", "-c", 'echo "token is $TOKEN" >&2; exit 3'],
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hook-secret", "key": "TOKEN"}}}]})
    [failed] = status["conditions"]
    assert failed["message"] == f"token is {MASK}"
    assert "pod-token-value" not in log and f"token is {MASK}" in log


def test_hook_output_quoting_secrets_is_masked_in_status_conditions_events_and_errors(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = stash_world
    db = pg_database()
    db.sql("CREATE TABLE t(id int); INSERT INTO t VALUES (1)")
    w.appbinding("pg", db.url, app_type="kubedb.com/postgres", username="postgres", password="db-password-value")
    w.repository(secret={"AWS_SECRET_ACCESS_KEY": "storage-secret-value"})
    w.secret("hook-secret", {"TOKEN": "hook-token-value"})
    config = w.backup_config("pg-backup", "pg")
    config["spec"]["hooks"] = {"postBackup": {"exec": {"command": [
        "sh", "-c", 'echo "leak $HOOK_TOKEN db-password-value storage-secret-value s3:http://KEY:hunter22@h" >&2; '
                    "exit 2"]}}}
    w.cluster.replace(config)
    w.backup_session("pg-backup", "pg-backup-1")
    given = kubelet_gives(w.cluster, w.namespace, "pg")
    given = PodInputs({**(given.secrets or {}), "hook-secret": {"TOKEN": "hook-token-value"}})
    monkeypatch.setenv("HOOK_TOKEN", "hook-token-value")  # what runtimeSettings env secretKeyRef puts there
    result = backup(w.cluster, w.namespace, "pg-backup-1", TransferOptions(database="postgres", given=given))
    assert not result.ok
    written = json.dumps([w.status("BackupSession", "pg-backup-1"), w.events("pg-backup-1"), result.error])
    for value in ("hook-token-value", "db-password-value", "storage-secret-value", "hunter22"):
        assert value not in written, value
    assert f"leak {MASK} {MASK} {MASK} s3:http://KEY:***@h" in result.error


def test_get_secret_masks_data_unless_show_secrets(tmp_path: Path) -> None:
    manifest = tmp_path / "s.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                                        "metadata": {"name": "s", "namespace": "demo"},
                                        "stringData": {"PASSWORD": "hunter2-value"}}))
    state = str(tmp_path / "state.db")
    runner = CliRunner()
    assert runner.invoke(app, ["apply", "-f", str(manifest), "--state", state, "--auto-approve"]).exit_code == 0
    encoded = "aHVudGVyMi12YWx1ZQ=="
    for args in (["-o", "yaml"], ["-o", "json"], ["s", "-o", "yaml"], ["s", "-o", "json"], []):
        out = runner.invoke(app, ["get", "secret", *args, "-n", "demo", "--state", state]).output
        assert "hunter2-value" not in out and encoded not in out, (args, out)
    shown = runner.invoke(app, ["get", "secret", "-o", "json", "-n", "demo", "--state", state, "--show-secrets"])
    assert encoded in shown.output


def test_credentials_in_a_storage_url_are_redacted_in_errors(tmp_path: Path) -> None:
    url = "s3:http://AKIAKEY:very-secret-key@127.0.0.1:1/bucket"
    result = CliRunner().invoke(app, ["repo", "snapshots", "--repo", url], env={"STASHPLAN_PASSWORD": "pw"})
    assert result.exit_code != 0
    assert "very-secret-key" not in result.output and "AKIAKEY:***@127.0.0.1" in result.output, result.output
