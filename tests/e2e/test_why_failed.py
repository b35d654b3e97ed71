"""What the loop prints says why a session failed: one log line per final phase, a REASON column in
`stashplan get backupsession`, and `stashplan describe` with conditions, the Job's log tail and Events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.test_loop_crash import phases, start_loop, stop, trigger, wait_until
from tests.fixtures.examples import copy_examples


def failing_addon() -> list[dict]:
    script = "echo 'dumping 3 tables'; echo 'dump failed: disk on fire' >&2; exit 3"
    return [
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Function", "metadata": {"name": "failing-backup"},
         "spec": {"image": "busybox", "command": ["sh", "-c", script]}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Task", "metadata": {"name": "failing-backup"},
         "spec": {"steps": [{"name": "failing-backup"}]}},
    ]


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "stashplan", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_failed_session_says_why_in_the_log_the_table_and_describe(tmp_path: Path) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    (manifests / "addon.yaml").write_text(yaml.safe_dump_all(failing_addon()))
    path = manifests / "backupconfiguration.yaml"
    path.write_text(path.read_text().replace("sqlite-backup-3", "failing-backup"))
    state = tmp_path / "state" / "state.db"
    log = tmp_path / "loop.log"
    loop = start_loop(manifests, state, log)
    try:
        wait_until("the loop to apply", lambda: "CronJob/demo/stash-trigger" in log.read_text())
        trigger(state)
        wait_until("the session to fail", lambda: "Failed" in phases(state).values())
        [name] = phases(state)
        wait_until("the log line", lambda: f"BackupSession demo/{name} Failed" in log.read_text())
    finally:
        stop(loop)
    lines = [ln for ln in log.read_text().splitlines() if f"BackupSession demo/{name} Failed" in ln]
    assert len(lines) == 1, lines  # one line per final phase change
    assert "disk on fire" in lines[0]

    table = cli("get", "backupsession", "-n", "demo", "--state", str(state))
    header, row = table.splitlines()[:2]
    assert "REASON" in header.split()
    assert "Failed" in row and "disk on fire" in row

    text = cli("describe", "backupsession", name, "-n", "demo", "--state", str(state))
    assert f"Name:         {name}" in text and "Phase:        Failed" in text
    assert "Reason:" in text and "disk on fire" in text.split("Reason:")[1].splitlines()[0]
    conditions = text.split("Conditions:")[1].split("Job:")[0]
    assert "BackupDisrupted" in conditions and "True" in conditions
    job_part = text.split("Job:")[1].split("Events:")[0]
    assert f"stash-backup-{name} (Failed)" in job_part
    assert "dumping 3 tables" in job_part and "dump failed: disk on fire" in job_part  # the Job's log tail
    events = text.split("Events:")[1]
    assert "Warning" in events and "BackupSession Failed" in events and "BackupSession Running" in events


def test_describe_of_a_missing_object_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from stashplan.cluster.local.store import LocalCluster

    LocalCluster(tmp_path / "s.db").close()
    proc = subprocess.run([sys.executable, "-m", "stashplan", "describe", "bc", "nope", "-n", "demo", "--state",
                           str(tmp_path / "s.db")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "BackupConfiguration demo/nope" in proc.stderr
