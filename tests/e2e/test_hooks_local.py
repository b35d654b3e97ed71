"""Hooks in local mode, end to end: manifests -> plan/apply -> the backup Job's process -> hooks run on this
machine (exec) or against a server the test starts (httpGet/httpPost), with Stash's phase rules."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.api import builtin_addons, load_paths
from stashplan.cli import app
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once
from stashplan.repository import Repository

runner = CliRunner()
PASSWORD = "hooks-e2e-password"


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200, or the status named by a `status=NNN` path part; records method, path and body."""

    seen: list[tuple[str, str, str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.seen.append((self.command, self.path, body))
        code = int(self.path.split("status=")[1][:3]) if "status=" in self.path else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[tuple[int, list[tuple[str, str, str]]]]:
    seen: list[tuple[str, str, str]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def manifests(folder: Path, db: Path, repo: Path, hooks: dict) -> list[dict]:
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
         "stringData": {"RESTIC_PASSWORD": PASSWORD}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
         "metadata": {"name": "repo", "namespace": "demo"},
         "spec": {"backend": {"local": {"mountPath": str(repo), "hostPath": {"path": str(repo)}},
                              "storageSecretName": "repo-secret"}}},
        {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
         "metadata": {"name": "app-db", "namespace": "demo"},
         "spec": {"type": "stashplan.dev/sqlite", "clientConfig": {"url": f"sqlite:///{db}"}}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
         "metadata": {"name": "app-db-backup", "namespace": "demo"},
         "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"}, "backupHistoryLimit": 5,
                  "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                     "name": "app-db"}},
                  "retentionPolicy": {"name": "keep", "keepLast": 10, "prune": True},
                  "hooks": hooks}},
    ]
    folder.mkdir(exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return load_paths([folder])


def backup_once(cluster: LocalCluster, controllers: LocalControllers, objs: list[dict], state: Path) -> dict:
    """Trigger a BackupSession as the CronJob would, run the loop until it ends; the finished session."""
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)  # apply the manifests
    before = {s["metadata"]["name"] for s in cluster.list("BackupSession", "demo")}
    time.sleep(1.05)  # session names carry the second they were made in
    result = runner.invoke(app, ["trigger", "app-db-backup", "-n", "demo", "--state", str(state)])
    assert result.exit_code == 0, result.output
    end = time.monotonic() + 60
    while time.monotonic() < end:
        run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
        new = [s for s in cluster.list("BackupSession", "demo") if s["metadata"]["name"] not in before]
        if new and (new[0].get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return new[0]
        controllers.jobs.wait_all(0.3)
    raise AssertionError("the BackupSession did not finish")


def snapshots(repo: Path) -> int:
    with Repository.open(open_storage(f"local:{repo}"), PASSWORD) as r:
        return len(r.snapshots())


def condition(session: dict, type_: str) -> dict:
    [cond] = [c for c in session["status"]["targets"][0].get("conditions") or [] if c["type"] == type_]
    return cond


def test_backup_hooks_run_on_this_machine_and_follow_stash_phase_rules(
    tmp_path: Path, sqlite_file: Path, hook_server: tuple[int, list[tuple[str, str, str]]]
) -> None:
    port, seen = hook_server
    state, repo, marker = tmp_path / "state.db", tmp_path / "repo", tmp_path / "pre-hook-ran"
    cluster = LocalCluster(state)
    controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
    pre_ok = {"exec": {"command": ["sh", "-c", f"echo '{{{{ .Name }}}} {{{{ .Target.Name }}}}' > {marker}"]}}
    post_get = {"httpGet": {"host": "127.0.0.1", "port": port, "path": "/backup-done"},
                "executionPolicy": "OnSuccess"}

    # 1. Both hooks succeed: the marker holds the rendered template, the server saw the GET, a snapshot exists.
    objs = manifests(tmp_path / "m", sqlite_file, repo, {"preBackup": pre_ok, "postBackup": post_get})
    session = backup_once(cluster, controllers, objs, state)
    assert session["status"]["phase"] == "Succeeded", session["status"]
    assert marker.read_text().strip() == f"{session['metadata']['name']} app-db"
    assert [(m, p) for m, p, _ in seen] == [("GET", "/backup-done")]
    assert condition(session, "PreBackupHookExecutionSucceeded")["status"] == "True"
    assert condition(session, "PostBackupHookExecutionSucceeded")["reason"] == "SuccessfullyExecutedPostBackupHook"
    assert snapshots(repo) == 1

    # 2. A failing preBackup hook: the session fails with the hook's stderr, no snapshot, no postBackup hook.
    pre_bad = {"exec": {"command": ["sh", "-c", "echo 'cannot freeze writes' >&2; exit 4"]}}
    objs = manifests(tmp_path / "m", sqlite_file, repo, {"preBackup": pre_bad, "postBackup": post_get})
    session = backup_once(cluster, controllers, objs, state)
    status = session["status"]
    assert status["phase"] == "Failed"
    assert status["targets"][0]["phase"] == "Failed"
    cond = condition(session, "PreBackupHookExecutionSucceeded")
    assert (cond["status"], cond["reason"]) == ("False", "FailedToExecutePreBackupHook")
    assert "exec sh exited with code 4: cannot freeze writes" in cond["message"]
    assert "preBackup hook failed" in status["targets"][0]["stats"][0]["error"]
    assert "snapshots" not in status["targets"][0]["stats"][0]
    assert snapshots(repo) == 1
    assert len(seen) == 1  # Stash runs no postBackup hook after a failed preBackup hook

    # 3. A failing postBackup hook (HTTP 500, policy Always): the session fails, but its snapshot stays.
    post_bad = {"httpPost": {"host": "127.0.0.1", "port": port, "path": "/status=500",
                             "body": '{"session": "{{ .Name }}", "phase": "{{ .Status.Phase }}"}'}}
    objs = manifests(tmp_path / "m", sqlite_file, repo, {"postBackup": post_bad})
    session = backup_once(cluster, controllers, objs, state)
    status = session["status"]
    assert status["phase"] == "Failed"
    assert status["targets"][0]["stats"][0]["phase"] == "Succeeded"  # the host's backup itself worked
    assert condition(session, "PostBackupHookExecutionSucceeded")["status"] == "False"
    assert "answered HTTP 500" in condition(session, "PostBackupHookExecutionSucceeded")["message"]
    assert snapshots(repo) == 2
    method, path, body = seen[-1]
    assert (method, path) == ("POST", "/status=500")
    assert yaml.safe_load(body) == {"session": session["metadata"]["name"], "phase": "Succeeded"}
