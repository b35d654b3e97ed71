"""The local loop as a process, killed and doubled: a session's final phase never changes, an orphaned Job
is ended (never adopted) before its session fails, one invoker never runs two backups at once, and one
state database has one loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from stashplan.cluster.local.store import LocalCluster
from stashplan.errors import Conflict
from tests.fixtures.examples import copy_examples


def slow_addon(marker: Path, seconds: int, retry_seconds: int | None = None) -> list[dict]:
    """A backup Function that runs `seconds` (a retry: `retry_seconds`), then reports Succeeded for its session
    as a transfer does."""
    report = (f"{sys.executable} -c \"import os; from stashplan.cluster.local.store import LocalCluster; "
              f"LocalCluster(os.environ['STASHPLAN_STATE']).patch_status('BackupSession', 'demo', "
              f"'${{BACKUP_SESSION}}', {{'phase': 'Succeeded'}})\"")
    first = marker.with_name("first-attempt")
    sleep = (f"sleep {seconds}" if retry_seconds is None else
             f"if [ -e {first} ]; then sleep {retry_seconds}; else touch {first}; sleep {seconds}; fi")
    script = f"echo slow-job-started; {sleep}; {report} && echo ${{BACKUP_SESSION}} >> {marker}"
    return [
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Function", "metadata": {"name": "slow-backup"},
         "spec": {"image": "busybox", "command": ["sh", "-c", script]}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Task", "metadata": {"name": "slow-backup"},
         "spec": {"steps": [{"name": "slow-backup"}]}},
    ]


def setup(tmp_path: Path, seconds: int, retry: bool = False) -> tuple[Path, Path, Path]:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    marker = tmp_path / "reported"
    addon = slow_addon(marker, seconds, retry_seconds=1 if retry else None)
    (manifests / "addon.yaml").write_text(yaml.safe_dump_all(addon))
    path = manifests / "backupconfiguration.yaml"
    text = path.read_text().replace("sqlite-backup-3", "slow-backup")
    if retry:
        text += "  backupHistoryLimit: 5\n  retryConfig:\n    maxRetry: 1\n    delay: 0s\n"
    path.write_text(text)
    return manifests, tmp_path / "state" / "state.db", marker


def start_loop(manifests: Path, state: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(out, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "stashplan", "apply", "--watch", "--interval", "0.5", "-f", str(manifests),
             "--state", str(state), *extra],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_until(what: str, cond: Callable[[], object], timeout: float = 30.0,
               each: Callable[[], None] = lambda: None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        each()
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def phases(state: Path) -> dict[str, str]:
    c = LocalCluster(state)
    try:
        return {s["metadata"]["name"]: (s.get("status") or {}).get("phase", "Pending")
                for s in c.list("BackupSession", "demo")}
    finally:
        c.close()


def slow_jobs(folder: Path) -> list[psutil.Process]:
    """The slow Jobs' shell processes of the test using `folder` that still run (zombies have ended)."""
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if ("slow-job-started" in cmd and cmd.startswith("sh -c") and str(folder) in cmd
                and p.info["status"] != psutil.STATUS_ZOMBIE):
            out.append(p)
    return out


def trigger(state: Path) -> None:
    subprocess.run([sys.executable, "-m", "stashplan", "trigger", "app-db-backup", "-n", "demo", "--state", str(state)],
                   check=True, capture_output=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_loop_killed_during_a_job_fails_the_session_once_and_ends_the_orphan(tmp_path: Path) -> None:
    manifests, state, marker = setup(tmp_path, seconds=20)
    loop = start_loop(manifests, state, tmp_path / "loop1.log")
    try:
        wait_until("the loop to apply", lambda: state.exists() and LocalCluster(state).list("CronJob", "demo"))
        trigger(state)
        wait_until("the slow Job to run", lambda: slow_jobs(tmp_path) and "Running" in phases(state).values())
        [orphan] = slow_jobs(tmp_path)
        loop.kill()  # kill -9: no clean-up at all
        loop.wait()
        assert orphan.is_running()
    finally:
        stop(loop)
    loop = start_loop(manifests, state, tmp_path / "loop2.log")
    try:
        wait_until("the session to fail", lambda: "Failed" in phases(state).values())
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE  # it can report nothing now
        [(name, phase)] = phases(state).items()
        assert phase == "Failed"
        assert not marker.exists(), "the orphaned Job ran to its end"
        c = LocalCluster(state)
        session = c.get("BackupSession", "demo", name)
        messages = " ".join(cond.get("message", "") for cond in session["status"]["conditions"])
        assert "RunnerLost" in messages and "was ended" in messages, messages
        with pytest.raises(Conflict, match="already Failed; a final phase never changes"):
            c.patch_status("BackupSession", "demo", name, {"phase": "Succeeded"})  # what a late transfer writes
        assert c.get("BackupSession", "demo", name)["status"]["phase"] == "Failed"
    finally:
        stop(loop)


@pytest.mark.slow
def test_retry_waits_for_the_orphaned_attempt_one_backup_per_invoker(tmp_path: Path) -> None:
    manifests, state, marker = setup(tmp_path, seconds=60, retry=True)
    loop = start_loop(manifests, state, tmp_path / "loop1.log")
    try:
        wait_until("the loop to apply", lambda: state.exists() and LocalCluster(state).list("CronJob", "demo"))
        trigger(state)
        wait_until("the slow Job to run", lambda: slow_jobs(tmp_path) and "Running" in phases(state).values())
        loop.kill()
        loop.wait()
    finally:
        stop(loop)
    most = 0

    def watch() -> None:
        nonlocal most
        most = max(most, len(slow_jobs(tmp_path)))

    loop = start_loop(manifests, state, tmp_path / "loop2.log")
    try:
        wait_until("the retry to succeed", lambda: "Succeeded" in phases(state).values(), timeout=40, each=watch)
        assert sorted(phases(state).values()) == ["Failed", "Succeeded"]
        assert most == 1, "two backups of one BackupConfiguration ran at once"
        wait_until("the retry to end", lambda: marker.exists() and not slow_jobs(tmp_path))
        assert len(marker.read_text().split()) == 1
    finally:
        stop(loop)


@pytest.mark.slow
def test_one_loop_per_state_database(tmp_path: Path) -> None:
    manifests, state, _ = setup(tmp_path, seconds=1)
    first = start_loop(manifests, state, tmp_path / "first.log")
    waiting = None
    try:
        wait_until("the first loop to apply", lambda: state.exists() and LocalCluster(state).list("CronJob", "demo"))
        second = subprocess.run(
            [sys.executable, "-m", "stashplan", "apply", "--watch", "--interval", "0.5", "-f", str(manifests),
             "--state", str(state)], capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert f"is in use by the loop pid {first.pid}" in " ".join(second.stderr.split())
        assert "--wait-for-lock" in second.stderr
        assert "Traceback" not in second.stderr
        waiting = start_loop(manifests, state, tmp_path / "waiting.log", "--wait-for-lock")
        wait_until("the second loop to wait", lambda: "waiting for the loop pid" in (tmp_path / "waiting.log").read_text())
        assert waiting.poll() is None
        stop(first)
        wait_until("the second loop to take over", lambda: "watching" in (tmp_path / "waiting.log").read_text())
        assert waiting.poll() is None
    finally:
        stop(first)
        if waiting is not None:
            stop(waiting)


@pytest.mark.slow
def test_sigterm_stops_the_loop_within_5s_and_ends_its_running_job(tmp_path: Path) -> None:
    manifests, state, marker = setup(tmp_path, seconds=30)
    loop = start_loop(manifests, state, tmp_path / "loop.log")
    try:
        wait_until("the loop to apply", lambda: state.exists() and LocalCluster(state).list("CronJob", "demo"))
        trigger(state)
        wait_until("the slow Job to run", lambda: slow_jobs(tmp_path) and "Running" in phases(state).values())
        [job_process] = slow_jobs(tmp_path)
        loop.send_signal(signal.SIGTERM)
        started = time.monotonic()
        loop.wait(timeout=10)
        took = time.monotonic() - started
    finally:
        stop(loop)
    assert loop.returncode == 0, (tmp_path / "loop.log").read_text()[-2000:]
    assert took < 5.0, f"the loop took {took:.1f}s to stop"
    assert not slow_jobs(tmp_path), "the Job's process outlived the loop"
    assert not job_process.is_running() or job_process.status() == psutil.STATUS_ZOMBIE
    [job] = [j for j in LocalCluster(state).list("Job", "demo") if j["metadata"]["name"].startswith("stash-backup-")]
    assert job["status"]["failed"] == 1
    assert job["status"]["conditions"][0]["reason"] == "LoopStopped"
    loop = start_loop(manifests, state, tmp_path / "again.log")  # the next loop fails the session, saying why
    try:
        wait_until("the session to fail", lambda: "Failed" in phases(state).values())
    finally:
        stop(loop)
    [session] = LocalCluster(state).list("BackupSession", "demo")
    assert "LoopStopped: the loop stopped while this Job ran" in str(session["status"]["conditions"])
    assert not marker.exists()



def test_every_path_to_the_state_file_shares_its_lock(tmp_path: Path) -> None:
    """The lock is the state file's own, not its path's: a symlinked folder, a symlink to the file under another
    name, and `x/../state.db` all meet the first loop's lock."""
    manifests, state, _ = setup(tmp_path, seconds=1)
    state.parent.mkdir(parents=True)
    (tmp_path / "linked-folder").symlink_to(state.parent, target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "other.db").symlink_to(state)
    (tmp_path / "x").mkdir()
    first = start_loop(manifests, tmp_path / "linked-folder" / "state.db", tmp_path / "first.log")
    try:
        wait_until("the first loop to apply", lambda: state.exists() and LocalCluster(state).list("CronJob", "demo"))
        for other in (state, tmp_path / "elsewhere" / "other.db", tmp_path / "x" / ".." / "state" / "state.db"):
            second = subprocess.run(
                [sys.executable, "-m", "stashplan", "apply", "--watch", "--interval", "0.5", "-f", str(manifests),
                 "--state", str(other)], capture_output=True, text=True, timeout=30)
            assert second.returncode == 1, (other, second.stdout[-500:])
            assert f"is in use by the loop pid {first.pid}" in " ".join(second.stderr.split()), other
    finally:
        stop(first)
