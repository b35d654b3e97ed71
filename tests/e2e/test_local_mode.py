"""Local mode end to end: the CLI against the embedded store, CronJobs firing, Jobs running real processes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.api import builtin_addons, load_paths
from stashplan.cli import app
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once
from tests.fixtures.examples import copy_examples

runner = CliRunner()


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    return copy_examples(tmp_path / "manifests", tmp_path / "demo")


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_plan_apply_converges_and_schedule_change_is_one_field(manifests: Path, tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    code, out = cli("plan", "-f", str(manifests), "--state", state, "--detailed-exitcode")
    assert code == 2, out
    assert "+ CronJob/demo/stash-trigger-app-db-backup will be created" in out
    assert "+ ServiceAccount/demo/stashplan-job will be created" in out
    assert "Plan: 7 to add, 0 to change, 0 to destroy." in out
    code, out = cli("apply", "-f", str(manifests), "--state", state, "--auto-approve")
    assert code == 0, out
    assert "Apply complete!" in out
    code, out = cli("plan", "-f", str(manifests), "--state", state, "--detailed-exitcode")
    assert code == 0, out
    assert "No changes." in out

    path = manifests / "backupconfiguration.yaml"
    path.write_text(path.read_text().replace('"*/5 * * * *"', '"0 3 * * *"'))
    code, out = cli("plan", "-f", str(manifests), "--state", state, "--detailed-exitcode")
    assert code == 2, out
    assert out.count('~ spec.schedule: "*/5 * * * *" -> "0 3 * * *"') == 2  # the config and its CronJob
    assert "Plan: 0 to add, 2 to change, 0 to destroy." in out


def test_bad_manifest_is_one_line_per_problem_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
        "metadata": {"name": "broken", "namespace": "demo"},
        "spec": {"schedule": "not a cron", "repository": {"name": "r"},
                 "target": {"ref": {"kind": "AppBinding", "name": "x"}},
                 "retentionPolicy": {"name": "k", "keepLast": 1, "prune": True}}}))
    code, out = cli("plan", "-f", str(bad), "--state", str(tmp_path / "s.db"))
    assert code == 1
    assert "Traceback" not in out
    assert f"{bad}: BackupConfiguration/broken: spec.schedule" in out


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(manifests: Path, tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    saved = tmp_path / "plan.json"
    code, out = cli("plan", "-f", str(manifests), "--state", state, "--out", str(saved))
    assert code == 0, out
    assert "not-a-real-password" not in saved.read_text()
    code, out = cli("apply", str(saved), "--state", state)
    assert code == 0, out
    cluster = LocalCluster(state)
    secret = cluster.get("Secret", "demo", "local-repo-secret")
    assert secret["data"]["RESTIC_PASSWORD"]  # the real value came from the manifest, not the plan file

    path = manifests / "backupconfiguration.yaml"
    path.write_text(path.read_text().replace("keepLast: 5", "keepLast: 7"))
    code, out = cli("plan", "-f", str(manifests), "--state", state, "--out", str(saved))
    assert code == 0, out
    config = cluster.get("BackupConfiguration", "demo", "app-db-backup")
    config["metadata"]["annotations"] = {"touched": "by someone else"}
    cluster.replace(config)
    code, out = cli("apply", str(saved), "--state", state)
    assert code == 1
    assert "stale" in out and "BackupConfiguration/demo/app-db-backup" in out
    assert cluster.get("BackupConfiguration", "demo", "app-db-backup")["spec"]["retentionPolicy"]["keepLast"] == 5


def test_a_saved_plan_is_private_sealed_and_refused_when_altered(manifests: Path, tmp_path: Path) -> None:
    import hashlib
    import json

    state = str(tmp_path / "state.db")
    saved = tmp_path / "plan.json"
    code, out = cli("plan", "-f", str(manifests), "--state", state, "--out", str(saved))
    assert code == 0, out
    assert saved.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "plan.key").stat().st_mode & 0o777 == 0o600  # beside the state, never in the file
    data = json.loads(saved.read_text())
    [digest] = [c["secret_digest"] for c in data["changes"] if "secret_digest" in c]
    import yaml

    from stashplan.secrets import fold_string_data

    secret = next(d for d in yaml.safe_load_all((manifests / "repository.yaml").read_text()) if d["kind"] == "Secret")
    plain = hashlib.sha256(json.dumps(fold_string_data(secret)["data"], sort_keys=True).encode()).hexdigest()
    assert digest != plain  # keyed: not checkable against guesses without the key
    config = next(c for c in data["changes"] if c["kind"] == "BackupConfiguration")
    config["after"]["spec"]["schedule"] = "* * * * *"  # tampered with after it was saved
    saved.write_text(json.dumps(data))
    code, out = cli("apply", str(saved), "--state", state)
    assert code == 1 and "seal does not verify" in out, out
    assert not LocalCluster(state).list("BackupConfiguration", "demo")  # nothing applied


def shell_addon(script: str) -> list[dict]:
    """A Task whose Function runs a plain shell command (what a user-written Function may do)."""
    return [
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Function", "metadata": {"name": "shell-backup"},
         "spec": {"image": "busybox", "command": ["sh", "-c", script]}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Task", "metadata": {"name": "shell-backup"},
         "spec": {"steps": [{"name": "shell-backup"}]}},
    ]


def run_until(cluster: LocalCluster, controllers: LocalControllers, manifests: list[dict], done, now=None,
              timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        run_once(cluster, manifests=manifests, addons=builtin_addons(), controllers=controllers,
                 now=now or datetime.now(UTC))
        if done():
            return
        controllers.jobs.wait_all(0.5)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("script,expect_phase,expect_message", [
    ("echo 'dump failed: disk on fire' >&2; exit 3", "Failed", "disk on fire"),
    ("echo all good", "Failed", "did not report success"),
])
def test_cronjob_fires_trigger_job_then_backup_job_runs_a_real_process(
    manifests: Path, tmp_path: Path, script: str, expect_phase: str, expect_message: str
) -> None:
    state = tmp_path / "state.db"
    (manifests / "addon.yaml").write_text(yaml.safe_dump_all(shell_addon(script)))
    path = manifests / "backupconfiguration.yaml"
    path.write_text(path.read_text().replace("sqlite-backup-3", "shell-backup").replace('"*/5 * * * *"', '"* * * * *"'))
    objs = load_paths([manifests])
    cluster = LocalCluster(state)
    cs = cluster_settings("local", state)
    controllers = LocalControllers.create(cluster, cs.env(), tmp_path / "logs")
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
    assert cluster.list("CronJob", "demo")
    # Two minutes later the every-minute schedule is due: the trigger Job runs `stashplan trigger`.
    later = datetime.now(UTC) + timedelta(minutes=2)
    run_until(cluster, controllers, objs, lambda: bool(cluster.list("BackupSession", "demo")), now=later)

    def finished() -> bool:
        sessions = cluster.list("BackupSession", "demo")
        return bool(sessions) and (sessions[0].get("status") or {}).get("phase") in ("Succeeded", "Failed")

    run_until(cluster, controllers, objs, finished, now=later)
    [session] = cluster.list("BackupSession", "demo")
    assert session["metadata"]["name"].startswith("app-db-backup-")
    assert session["metadata"]["labels"]["stash.appscode.com/invoker-name"] == "app-db-backup"
    assert session["status"]["phase"] == expect_phase
    job = cluster.get("Job", "demo", f"stash-backup-{session['metadata']['name']}")
    assert job["status"].get("failed" if "exit 3" in script else "succeeded") == 1
    reasons = " ".join(c.get("message", "") for c in session["status"]["conditions"])
    reasons += " ".join(str(t) for t in session["status"].get("targets", []))
    assert expect_message in reasons or expect_message in str(job["status"])
    log = (tmp_path / "logs" / f"demo_{job['metadata']['name']}.log").read_text()
    assert ("disk on fire" in log) if "exit 3" in script else ("all good" in log)


def test_session_phase_changes_are_recorded_as_events(manifests: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    (manifests / "addon.yaml").write_text(yaml.safe_dump_all(shell_addon("echo 'no space left on device' >&2; exit 1")))
    path = manifests / "backupconfiguration.yaml"
    path.write_text(path.read_text().replace("sqlite-backup-3", "shell-backup"))
    objs = load_paths([manifests])
    cluster = LocalCluster(state)
    controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
    code, out = cli("trigger", "app-db-backup", "-n", "demo", "--state", str(state))
    assert code == 0, out

    def failed() -> bool:
        return any((s.get("status") or {}).get("phase") == "Failed" for s in cluster.list("BackupSession", "demo"))

    run_until(cluster, controllers, objs, failed)
    [session] = cluster.list("BackupSession", "demo")
    events = sorted((e for e in cluster.list("Event", "demo") if e["involvedObject"]["name"] == session["metadata"]["name"]),
                    key=lambda e: int(e["metadata"]["resourceVersion"]))
    assert [(e["reason"], e["type"]) for e in events] == [("BackupSession Running", "Normal"),
                                                          ("BackupSession Failed", "Warning")]
    assert "no space left on device" in events[1]["message"]


@pytest.mark.parametrize("args,message", [
    (["apply", "{tmp}/garbage.json"], "garbage.json: not a plan saved by `stashplan plan --out`"),
    (["trigger", "missing", "-n", "demo"], "NotFound: BackupConfiguration demo/missing"),
    (["get", "widgets"], "unknown kind 'widgets'"),
    (["plan", "-f", "{tmp}/nowhere"], "nowhere: no such file or directory"),
    (["plan", "--cluster", "kube", "--kubeconfig", "{tmp}/garbage.json"], "kubeconfig {tmp}/garbage.json: cannot load it"),
])
def test_bad_input_is_one_line_with_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "garbage.json").write_text("not json at all")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[0] != "plan" or "--cluster" not in argv:
        argv += ["--state", str(tmp_path / "state.db")]
    code, out = cli(*argv)
    assert code == 1
    assert message.replace("{tmp}", str(tmp_path)) in " ".join(out.split())
    assert "Traceback" not in out


def test_session_the_loop_fails_pushes_success_0_and_the_failure_reason_to_the_pushgateway(
    manifests: Path, tmp_path: Path, pushgateway: str
) -> None:
    from stashplan.desired.compute import Settings
    from tests.fixtures.pushgateway import read_metrics

    state = tmp_path / "state.db"
    (manifests / "addon.yaml").write_text(yaml.safe_dump_all(shell_addon("echo 'OOMKilled' >&2; exit 137")))
    path = manifests / "backupconfiguration.yaml"
    path.write_text(path.read_text().replace("sqlite-backup-3", "shell-backup"))
    objs = load_paths([manifests])
    cluster = LocalCluster(state)
    controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
    settings = Settings(pushgateway_url=pushgateway)
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers, settings=settings)
    assert cli("trigger", "app-db-backup", "-n", "demo", "--state", str(state))[0] == 0
    end = time.monotonic() + 30
    while not any((s.get("status") or {}).get("phase") == "Failed" for s in cluster.list("BackupSession", "demo")):
        assert time.monotonic() < end, "the session did not fail"
        run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers, settings=settings)
        controllers.jobs.wait_all(0.3)
    text = read_metrics(pushgateway)
    wanted = ('stash_appscode_com_backupsession_success{', 'invoker_name="app-db-backup"', 'job="backupconfiguration-demo-app-db-backup"')
    lines = [line for line in text.splitlines() if all(w in line for w in wanted)]
    assert lines and lines[0].endswith(" 0"), text[-2000:]
    failed = [line for line in text.splitlines() if line.startswith("stashplan_backupsession_last_failure_timestamp_seconds{")
              and 'invoker_name="app-db-backup"' in line]
    assert len(failed) == 1 and 'reason="JobFailed"' in failed[0], text[-2000:]
