"""Local mode supervises Deployments as processes: one process per Deployment with replicas 1, with its Secrets in
the environment and masked in its log; killed, it is seen as exited (status, log line) and started again after a
backoff; scaled to 0 or deleted, its process stops; the loop stopping ends it."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stashplan.backoff import RetryPolicy
from stashplan.cluster.local.deployments import DeploymentSupervisor
from stashplan.cluster.local.store import LocalCluster

NS = "demo"
SECRET_VALUE = "s3cret-Value-42"


def deployment(replicas: int = 1) -> dict:
    container = {"name": "worker", "image": "stashplan:0.1.0", "command": ["sh", "-c"],
                 "args": ['echo "started with $P_password"; exec sleep 300'],
                 "envFrom": [{"prefix": "P_", "secretRef": {"name": "creds", "optional": True}}]}
    labels = {"app": "worker"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "worker", "namespace": NS},
            "spec": {"replicas": replicas, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}}


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[LocalCluster, DeploymentSupervisor]]:
    cluster = LocalCluster(tmp_path / "state.db")
    cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
                    "stringData": {"password": SECRET_VALUE}})
    fast = RetryPolicy(attempts=100, base_delay=0.2, max_delay=0.2, jitter=0.0)
    supervisor = DeploymentSupervisor(cluster, {}, tmp_path / "logs", grace=2.0, policy=fast)
    yield cluster, supervisor
    supervisor.stop()
    cluster.close()


def _until(what: str, check: Callable[[], bool], tick: Callable[[], object], seconds: float = 20) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tick()
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _available(cluster: LocalCluster) -> dict:
    [cond] = cluster.get("Deployment", NS, "worker")["status"]["conditions"]
    return cond


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


def test_a_deployment_runs_as_a_process_restarted_after_a_kill_and_stopped_when_scaled_down_or_deleted(
    supervised: tuple[LocalCluster, DeploymentSupervisor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster, supervisor = supervised
    cluster.create(deployment())

    def tick() -> list[str]:
        return supervisor.tick(datetime.now(UTC))

    events = tick()
    first = supervisor.procs[(NS, "worker")].proc
    assert first is not None
    assert events == [f"Deployment demo/worker: process {first.pid} started"]
    status = cluster.get("Deployment", NS, "worker")["status"]
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert _available(cluster)["status"] == "True" and _available(cluster)["reason"] == "ProcessRunning"
    log = tmp_path / "logs" / "demo_worker.log"
    _until("the process's output in its log", lambda: "\nstarted with" in log.read_text(), tick)
    assert SECRET_VALUE not in log.read_text() and "started with (sensitive value)" in log.read_text()

    caplog.set_level(logging.WARNING, logger="stashplan.cluster.local.deployments")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    exited = tick()
    assert any("its process exited with code -9; starting it again" in e for e in exited), exited
    assert "its process exited with code -9" in caplog.text
    status = cluster.get("Deployment", NS, "worker")["status"]
    assert status["readyReplicas"] == 0 and _available(cluster)["reason"] == "ProcessExited"
    assert "exited with code -9" in _available(cluster)["message"]

    def restarted() -> bool:
        proc = supervisor.procs[(NS, "worker")].proc
        return proc is not None and proc.pid != first.pid and proc.poll() is None

    _until("a new process", restarted, tick)
    second = supervisor.procs[(NS, "worker")].proc
    assert second is not None and _available(cluster)["status"] == "True"
    assert "(1 restart(s))" in _available(cluster)["message"]

    cluster.apply(deployment(replicas=0))
    assert tick() == ["Deployment demo/worker scaled to 0: its process stopped"]
    assert not _alive(second.pid)
    status = cluster.get("Deployment", NS, "worker")["status"]
    assert (status["replicas"], status["readyReplicas"]) == (0, 0)
    assert _available(cluster)["reason"] == "ScaledToZero"

    cluster.apply(deployment(replicas=1))
    tick()
    third = supervisor.procs[(NS, "worker")].proc
    assert third is not None and third.poll() is None
    cluster.delete("Deployment", NS, "worker")
    assert tick() == ["Deployment demo/worker gone: its process stopped"]
    assert not _alive(third.pid) and supervisor.procs == {}


def test_a_process_a_killed_loop_left_running_is_ended_before_another_starts(
    supervised: tuple[LocalCluster, DeploymentSupervisor], tmp_path: Path
) -> None:
    cluster, supervisor = supervised
    cluster.create(deployment())
    supervisor.tick(datetime.now(UTC))
    left = supervisor.procs[(NS, "worker")].proc
    assert left is not None
    supervisor.procs.clear()  # as if the loop had been killed with -9: its process runs on, recorded
    fresh = DeploymentSupervisor(cluster, {}, tmp_path / "logs", grace=2.0)
    try:
        events = fresh.tick(datetime.now(UTC))
        assert any("was ended (left by a stopped loop)" in e for e in events), events
        left.wait(5)
        assert left.poll() is not None
        assert fresh.procs[(NS, "worker")].proc is not None
        assert fresh.stop() == ["Deployment demo/worker: its process stopped with the loop"]
        assert _available(cluster)["reason"] == "LoopStopped"
    finally:
        fresh.stop()
