"""The local controllers: Job deadlines kill the process, lost runners fail their Jobs, CronJob history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stashplan.cluster.local.controllers import CronScheduler, JobRunner
from stashplan.cluster.local.store import LocalCluster


def job(name: str, script: str, deadline: int | None = None, **meta: object) -> dict:
    spec: dict = {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", script],
         "env": [{"name": "GREETING", "value": "hello from env"}]}]}}}
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "demo", **meta},
            "spec": spec}


def run_to_end(runner: JobRunner, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    runner.tick(datetime.now(UTC))
    while runner.runs and time.monotonic() < end:
        runner.wait_all(0.2)
        runner.tick(datetime.now(UTC))
    assert not runner.runs, "jobs still running"


def test_job_runs_its_containers_in_order_with_their_env(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    j = job("two-steps", 'echo "$GREETING" > out.txt')
    j["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "first", "command": ["sh", "-c", "echo first > first.txt"], "workingDir": str(tmp_path)}]
    j["spec"]["template"]["spec"]["containers"][0]["workingDir"] = str(tmp_path)
    cluster.create(j)
    run_to_end(JobRunner(cluster, {}, tmp_path / "logs"))
    assert cluster.get("Job", "demo", "two-steps")["status"]["succeeded"] == 1
    assert (tmp_path / "first.txt").read_text() == "first\n"
    assert (tmp_path / "out.txt").read_text() == "hello from env\n"


def test_job_past_its_deadline_is_killed_and_failed(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    cluster.create(job("slow", "sleep 30", deadline=1))
    started = time.monotonic()
    run_to_end(JobRunner(cluster, {}, tmp_path / "logs"))
    status = cluster.get("Job", "demo", "slow")["status"]
    assert status["failed"] == 1
    assert status["conditions"][0]["reason"] == "DeadlineExceeded"
    assert time.monotonic() - started < 15


def test_job_started_by_a_runner_that_is_gone_is_failed_not_rerun(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    cluster.create(job("orphan", "touch ran-again", annotations={"stashplan.dev/runner": "old-host:1:2"}))
    cluster.patch_status("Job", "demo", "orphan", {"startTime": "2026-11-25T10:00:00Z", "active": 1})
    JobRunner(cluster, {}, tmp_path / "logs").tick(datetime.now(UTC))
    status = cluster.get("Job", "demo", "orphan")["status"]
    assert status["failed"] == 1 and status["conditions"][0]["reason"] == "RunnerLost"
    assert not (Path.cwd() / "ran-again").exists()


def test_job_whose_command_cannot_start_fails_saying_why(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    cluster.create(job("nul", "exit 0\x00"))  # Popen refuses an argument with a NUL byte (ValueError)
    run_to_end(JobRunner(cluster, {}, tmp_path / "logs"))
    status = cluster.get("Job", "demo", "nul")["status"]
    assert "succeeded" not in status and status["failed"] == 1
    assert "embedded null byte" in status["conditions"][0]["message"]


def test_cronjob_fires_once_per_slot_and_keeps_one_finished_job(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    cronjob = cluster.create({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "every-minute", "namespace": "demo"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job("x", "true")["spec"]}}})
    created = datetime.strptime(cronjob["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    # Ticks at fixed seconds into the minutes after creation, so two ticks meant for one slot never straddle
    # a minute (created at hh:mm:58, "+3 min 1 s" and "+3 min 2 s" would be two slots).
    minute = created.replace(second=0)
    cron, runner = CronScheduler(cluster), JobRunner(cluster, {}, tmp_path / "logs")
    assert cron.tick(created) == []  # not due yet
    for minutes in (1, 1, 2, 3):  # the same slot twice fires once
        cron.tick(minute + timedelta(minutes=minutes, seconds=1))
        run_to_end(runner)
    later = cron.tick(minute + timedelta(minutes=3, seconds=30))  # later in the last slot
    assert [c for c in later if "fired" in c] == []
    jobs = cluster.list("Job", "demo")
    assert len(jobs) == 1 and jobs[0]["status"]["succeeded"] == 1  # history limit 1
    suspended = dict(cluster.get("CronJob", "demo", "every-minute"), spec={**cronjob["spec"], "suspend": True})
    cluster.replace(suspended)
    assert cron.tick(created + timedelta(minutes=10)) == []
