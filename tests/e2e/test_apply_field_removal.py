"""Apply as a field manager in local mode (issue 22): a field stashplan applied and the manifest no longer has is
removed from the stored object and from what is derived from it, and `plan` agrees with `plan -f` afterwards."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.cluster.local.store import LocalCluster
from tests.fixtures.examples import copy_examples

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def edit_config(manifests: Path, **spec: object) -> None:
    """Set (value) or remove (None) fields of the example BackupConfiguration's spec."""
    path = manifests / "backupconfiguration.yaml"
    config = yaml.safe_load(path.read_text())
    for key, value in spec.items():
        if value is None:
            config["spec"].pop(key, None)
        else:
            config["spec"][key] = value
    path.write_text(yaml.safe_dump(config))


def apply(manifests: Path | None, state: str) -> None:
    code, out = cli("apply", *(("-f", str(manifests)) if manifests else ()), "--state", state, "--auto-approve")
    assert code == 0, out


def test_paused_removed_from_the_manifest_resumes_backups_and_both_plans_agree(tmp_path: Path) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    state = str(tmp_path / "state.db")
    edit_config(manifests, paused=True)
    apply(manifests, state)
    assert LocalCluster(state).get("CronJob", "demo", "stash-trigger-app-db-backup")["spec"]["suspend"] is True

    edit_config(manifests, paused=None)
    code, out = cli("plan", "-f", str(manifests), "--state", state)
    assert code == 0, out
    assert "- spec.paused: true" in out, out
    apply(manifests, state)

    cluster = LocalCluster(state)
    config = cluster.get("BackupConfiguration", "demo", "app-db-backup")
    assert "paused" not in config["spec"]
    assert cluster.get("CronJob", "demo", "stash-trigger-app-db-backup")["spec"]["suspend"] is False
    assert config["status"]["observedGeneration"] == config["metadata"]["generation"] == 2
    for args in (("plan",), ("plan", "-f", str(manifests))):
        code, out = cli(*args, "--state", state, "--detailed-exitcode")
        assert code == 0 and "No changes." in out, f"{args}: {out}"


def test_a_removed_task_param_leaves_the_stored_config_and_the_next_job(tmp_path: Path) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    state = str(tmp_path / "state.db")
    edit_config(manifests, task={"name": "sqlite-backup-3", "params": [{"name": "args", "value": "-safe"}]})
    apply(manifests, state)
    assert LocalCluster(state).get("BackupConfiguration", "demo", "app-db-backup")["spec"]["task"]["params"]

    edit_config(manifests, task={"name": "sqlite-backup-3"})
    apply(manifests, state)
    assert "params" not in LocalCluster(state).get("BackupConfiguration", "demo", "app-db-backup")["spec"]["task"]

    code, out = cli("trigger", "app-db-backup", "-n", "demo", "--state", state)
    assert code == 0, out
    apply(None, state)
    [job] = LocalCluster(state).list("Job", "demo")
    argv = [str(a) for c in job["spec"]["template"]["spec"]["containers"] for a in (*c.get("command", []),
                                                                                   *c.get("args", []))]
    assert any(a.startswith("--args=") for a in argv), argv
    assert "-safe" not in " ".join(argv), argv


def test_observed_generation_is_never_planned_backwards(tmp_path: Path) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    state = str(tmp_path / "state.db")
    apply(manifests, state)
    # As an earlier version left it: a status written for a generation the spec never reached.
    LocalCluster(state).patch_status("BackupConfiguration", "demo", "app-db-backup", {"observedGeneration": 2})
    for args in (("plan",), ("plan", "-f", str(manifests))):
        code, out = cli(*args, "--state", state, "--detailed-exitcode")
        assert code == 0 and "No changes." in out, f"{args}: {out}"
    apply(manifests, state)
    assert LocalCluster(state).get("BackupConfiguration", "demo", "app-db-backup")["status"]["observedGeneration"] == 2


def test_a_field_another_manager_owns_is_reported_and_not_overwritten(tmp_path: Path) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    state = str(tmp_path / "state.db")
    apply(manifests, state)
    cluster = LocalCluster(state)
    mine = cluster.get("BackupConfiguration", "demo", "app-db-backup")
    theirs = {"apiVersion": mine["apiVersion"], "kind": "BackupConfiguration",
              "metadata": {"name": "app-db-backup", "namespace": "demo"}, "spec": {"paused": True}}
    cluster.apply(theirs, field_manager="ops-team")  # someone else pauses it (a field the manifests leave alone)
    apply(None, state)  # the loop suspends its trigger
    assert LocalCluster(state).get("CronJob", "demo", "stash-trigger-app-db-backup")["spec"]["suspend"] is True

    edit_config(manifests, paused=False)
    result = runner.invoke(app, ["apply", "-f", str(manifests), "--state", state, "--auto-approve"])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if "ops-team" in ln]
    assert lines == ['error: BackupConfiguration/demo/app-db-backup: field spec.paused is managed by "ops-team"; '
                     "not overwritten"], result.output
    assert LocalCluster(state).get("BackupConfiguration", "demo", "app-db-backup")["spec"]["paused"] is True
    # What was planned from the refused change waits with it: the trigger stays suspended as the config says.
    assert LocalCluster(state).get("CronJob", "demo", "stash-trigger-app-db-backup")["spec"]["suspend"] is True
