"""Hooks are checked at plan time: one line naming the object and the field for every hook that cannot run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.api import validate_objects
from stashplan.api.modes import mode_problems
from stashplan.cli import app
from stashplan.desired.pods import session_pod
from stashplan.errors import ManifestError, StashplanError
from stashplan.transfer.hooks import Summary, allowed, render


def config(hooks: dict) -> dict[str, Any]:
    return {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
            "metadata": {"name": "bc", "namespace": "demo"},
            "spec": {"schedule": "0 * * * *", "repository": {"name": "r"}, "target": {"ref": {"name": "db"}},
                     "retentionPolicy": {"name": "k", "keepLast": 1, "prune": True}, "hooks": hooks}}


def restore(hooks: dict) -> dict[str, Any]:
    return {"apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession",
            "metadata": {"name": "rs", "namespace": "demo"},
            "spec": {"repository": {"name": "r"}, "target": {"ref": {"name": "db"}}, "hooks": hooks}}


def problems(obj: dict) -> list[str]:
    with pytest.raises(ManifestError) as err:
        validate_objects([("f.yaml", obj)])
    return err.value.problems


@pytest.mark.parametrize(("hooks", "line"), [
    ({"preBackup": {"grpc": {"port": 1}}}, "spec.hooks.preBackup.grpc: unknown field 'grpc'"),
    ({"preBackup": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 5432}}},
     "spec.hooks.preBackup: exactly one of exec, httpGet, httpPost or tcpSocket is required (found exec, tcpSocket)"),
    ({"preBackup": {"containerName": "mysql"}}, "spec.hooks.preBackup: exactly one of exec"),
    ({"preBackup": {"exec": {}}}, "spec.hooks.preBackup.exec.command: required field is missing"),
    ({"postBackup": {"httpGet": {"path": "/x"}}}, "spec.hooks.postBackup.httpGet.port: required field is missing"),
    ({"postBackup": {"httpGet": {"port": "http"}}}, "spec.hooks.postBackup.httpGet.port: named port 'http'"),
    ({"postBackup": {"tcpSocket": {"port": 70000}}}, "spec.hooks.postBackup.tcpSocket.port: port 70000 is out of range"),
    ({"postBackup": {"httpGet": {"port": 80, "scheme": "FTP"}}}, "spec.hooks.postBackup.httpGet.scheme"),
    ({"postBackup": {"exec": {"command": ["true"]}, "executionPolicy": "Sometimes"}},
     "spec.hooks.postBackup.executionPolicy"),
    ({"postBackup": {"httpPost": {"port": 443, "body": '{{ toJson .Status }}'}}},
     "spec.hooks.postBackup.httpPost.body: template action {{ toJson .Status }} is not supported"),
    ({"postBackup": {"exec": {"command": ["echo", "{{ .Status.Nope }}"]}}},
     "spec.hooks.postBackup.exec.command[1]: template action {{ .Status.Nope }} is not supported"),
])
def test_hooks_that_cannot_run_are_refused_with_their_field(hooks: dict, line: str) -> None:
    found = problems(config(hooks))
    assert any(p.startswith(f"f.yaml: BackupConfiguration/bc: {line}") for p in found), found


def test_on_final_retry_failure_is_for_backups_only() -> None:
    [line] = problems(restore({"postRestore": {"exec": {"command": ["true"]}, "executionPolicy": "OnFinalRetryFailure"}}))
    assert line.startswith("f.yaml: RestoreSession/rs: spec.hooks.postRestore: executionPolicy OnFinalRetryFailure")


def test_valid_hooks_load_with_stash_defaults() -> None:
    [obj] = validate_objects([("f.yaml", config({
        "preBackup": {"exec": {"command": ["sh", "-c", "echo {{ .Name }}"]}},
        "postBackup": {"httpPost": {"host": "hooks.example", "port": "443", "scheme": "HTTPS",
                                    "body": "{{- .Status.Error -}}"}}}))])
    hooks = obj["spec"]["hooks"]
    assert hooks["postBackup"]["executionPolicy"] == "Always"
    assert hooks["postBackup"]["httpPost"]["scheme"] == "HTTPS"


def test_plan_refuses_a_bad_hook_in_one_line_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bc.yaml"
    path.write_text(yaml.safe_dump(config({"preBackup": {"exec": {"command": ["true"]}, "httpGet": {"port": 80}}})))
    result = CliRunner().invoke(app, ["plan", "-f", str(path), "--state", str(tmp_path / "s.db")])
    assert result.exit_code == 1
    assert f"{path}: BackupConfiguration/bc: spec.hooks.preBackup: exactly one of" in " ".join(result.output.split())


def test_container_name_is_refused_in_kube_mode_only() -> None:
    [obj] = validate_objects([("f.yaml", config({"preBackup": {"exec": {"command": ["true"]}, "containerName": "mysql"}}))])
    assert mode_problems([obj], "local") == []
    [line] = mode_problems([obj], "kube")
    assert line.startswith("BackupConfiguration/demo/bc: spec.hooks.preBackup.containerName: stashplan runs hooks")


def test_hooks_on_a_task_that_does_not_run_the_transfer_are_an_error() -> None:
    foreign = {"containers": [{"name": "x", "command": ["/bin/restic"], "args": ["backup"]}]}
    with pytest.raises(StashplanError, match=r"spec.hooks \(preBackup\): hooks are run by `stashplan transfer`"):
        session_pod(foreign, {"hooks": {"preBackup": {"exec": {"command": ["true"]}}}})
    ours = {"containers": [{"name": "x", "command": ["stashplan"], "args": ["transfer", "backup"]}]}
    session_pod(ours, {"hooks": {"preBackup": {"exec": {"command": ["true"]}}}})


def test_templates_render_from_the_summary_and_policies_follow_stash() -> None:
    summary = Summary("bc-1", "demo", {"Kind": "BackupConfiguration", "Name": "bc"}, {"Name": "db"},
                      phase="Failed", error="disk full", retry_left=0)
    assert render("{{ .Name }}/{{.Target.Name}}: {{- .Status.Error -}}", summary) == "bc-1/db:disk full"
    assert allowed("OnFailure", "Failed", 2) and not allowed("OnSuccess", "Failed", 0)
    assert allowed("OnFinalRetryFailure", "Failed", 0) and not allowed("OnFinalRetryFailure", "Failed", 1)
    assert allowed("Always", "Succeeded", 0)


def test_plan_notes_that_a_local_exec_hook_runs_on_this_machine(tmp_path: Path) -> None:
    path = tmp_path / "bc.yaml"
    path.write_text(yaml.safe_dump_all([
        config({"preBackup": {"exec": {"command": ["pg_ctl", "stop"]}}, "postBackup": {"tcpSocket": {"port": 5432}}}),
        restore({"postRestore": {"exec": {"command": ["touch", "/tmp/restored"]}}}),
    ]))
    result = CliRunner().invoke(app, ["plan", "-f", str(path), "--state", str(tmp_path / "s.db")])
    output = " ".join(result.output.split())
    assert ("BackupConfiguration demo/bc: spec.hooks.preBackup exec 'pg_ctl' runs on this machine (local mode), "
            "as the user running stashplan") in output
    assert "postBackup exec" not in output  # a tcpSocket hook is not a command run here
