"""The operator's health endpoint over real HTTP: liveness, readiness and the loop's Prometheus metrics."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stashplan.operator.health import HealthServer
from stashplan.operator.loop_metrics import observe


@pytest.fixture
def health() -> Iterator[HealthServer]:
    server = HealthServer(0, host="127.0.0.1", stale_after=0.5)
    server.start()
    yield server
    server.stop()


def fetch(server: HealthServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_live_at_once_but_ready_only_after_a_successful_iteration(health: HealthServer) -> None:
    assert fetch(health, "/healthz") == (200, "ok\n")
    assert fetch(health, "/readyz")[0] == 503
    health.mark_iteration(False, {})
    assert fetch(health, "/readyz")[0] == 503
    health.mark_iteration(True, {"create": 1})
    assert fetch(health, "/readyz") == (200, "ready\n")


def test_a_standby_heartbeat_is_live_and_ready(health: HealthServer) -> None:
    health.heartbeat(leader=False)
    assert fetch(health, "/readyz")[0] == 200
    assert fetch(health, "/healthz")[0] == 200


def test_liveness_fails_when_the_loop_stops_reporting(health: HealthServer) -> None:
    health.heartbeat()
    assert fetch(health, "/healthz")[0] == 200
    time.sleep(0.7)
    assert fetch(health, "/healthz") == (503, "loop stalled\n")


def test_metrics_count_iterations_actions_errors_by_reason_durations_and_the_last_success(
    health: HealthServer,
) -> None:
    before = time.time()
    health.mark_iteration(True, {"create": 2, "status": 1, "delete": 0}, 0.02)
    health.mark_iteration(True, {"create": 1}, 3.0)
    health.mark_iteration(False, {}, 0.5, "Conflict")
    health.heartbeat(leader=True)
    code, text = fetch(health, "/metrics")
    assert code == 200
    got = samples(text)
    assert got[("stashplan_loop_iterations_total", (("result", "ok"),))] == 2
    assert got[("stashplan_loop_iterations_total", (("result", "error"),))] == 1
    assert got[("stashplan_plan_actions_total", (("action", "create"),))] == 3
    assert got[("stashplan_plan_actions_total", (("action", "status"),))] == 1
    assert ("stashplan_plan_actions_total", (("action", "delete"),)) not in got
    assert got[("stashplan_apply_errors_total", (("reason", "Conflict"),))] == 1
    assert got[("stashplan_loop_iteration_duration_seconds_count", ())] == 3
    assert got[("stashplan_loop_iteration_duration_seconds_bucket", (("le", "0.025"),))] == 1
    assert got[("stashplan_loop_iteration_duration_seconds_bucket", (("le", "5.0"),))] == 3
    assert got[("stashplan_leader", ())] == 1
    assert before <= got[("stashplan_last_successful_iteration_timestamp_seconds", ())] <= time.time()


def test_unknown_paths_are_404_and_stop_frees_the_port(health: HealthServer) -> None:
    assert fetch(health, "/nope")[0] == 404
    port = health.port
    health.stop()
    again = HealthServer(port, host="127.0.0.1")
    again.start()
    try:
        assert fetch(again, "/healthz")[0] == 200
    finally:
        again.stop()


def test_metrics_show_what_the_last_iteration_read_and_forget_what_is_gone(health: HealthServer) -> None:
    def config(name: str, schedule: str, paused: bool = False) -> dict:
        return {"kind": "BackupConfiguration", "metadata": {"name": name, "namespace": "demo",
                                                            "creationTimestamp": "2024-05-01T10:00:00Z"},
                "spec": {"schedule": schedule, "paused": paused}, "status": {"phase": "Ready"}}

    running = {"kind": "BackupSession", "metadata": {"name": "daily-1", "namespace": "demo"},
               "spec": {"invoker": {"name": "daily"}},
               "status": {"phase": "Running", "sessionDeadline": "2024-05-02T02:30:00Z"}}
    restore = {"kind": "RestoreSession", "metadata": {"name": "r1", "namespace": "demo"}}
    health.observe(observe([config("daily", "0 2 * * *"), config("weekdays", "0 2 * * 1-5", paused=True)],
                           [running, restore]))
    got = samples(fetch(health, "/metrics")[1])
    daily = (("invoker_kind", "BackupConfiguration"), ("invoker_name", "daily"), ("namespace", "demo"))
    weekdays = (("invoker_kind", "BackupConfiguration"), ("invoker_name", "weekdays"), ("namespace", "demo"))
    assert got[("stashplan_backupconfiguration_schedule_interval_seconds", daily)] == 86400
    assert got[("stashplan_backupconfiguration_schedule_interval_seconds", weekdays)] == 3 * 86400  # Fri -> Mon
    assert got[("stashplan_backupconfiguration_paused", daily)] == 0
    assert got[("stashplan_backupconfiguration_paused", weekdays)] == 1
    assert got[("stashplan_backupconfiguration_created_timestamp_seconds", daily)] == 1714557600
    assert got[("stashplan_session_deadline_timestamp_seconds", (*daily, ("session", "daily-1")))] == 1714617000
    assert got[("stashplan_objects", (("kind", "BackupConfiguration"), ("phase", "Ready")))] == 2
    assert got[("stashplan_objects", (("kind", "BackupSession"), ("phase", "Running")))] == 1
    assert got[("stashplan_objects", (("kind", "RestoreSession"), ("phase", "Pending")))] == 1
    # the next iteration: the weekday configuration deleted, the session finished
    health.observe(observe([config("daily", "0 2 * * *")], [{**running, "status": {"phase": "Succeeded"}}]))
    text = fetch(health, "/metrics")[1]
    assert "weekdays" not in text and "stashplan_session_deadline_timestamp_seconds{" not in text
    assert samples(text)[("stashplan_objects", (("kind", "BackupSession"), ("phase", "Succeeded")))] == 1


def test_metrics_say_which_wal_receivers_should_run_and_forget_them_when_they_should_not(
    health: HealthServer,
) -> None:
    config = {"kind": "BackupConfiguration", "metadata": {"name": "base", "namespace": "demo"},
              "spec": {"schedule": "0 2 * * *"}}
    receiver = {"kind": "Deployment", "metadata": {"name": "base-wal-receive", "namespace": "demo", "labels": {
        "app.kubernetes.io/managed-by": "stashplan", "app.kubernetes.io/component": "wal-receive",
        "stash.appscode.com/invoker-type": "BackupConfiguration", "stash.appscode.com/invoker-name": "base"}},
        "spec": {"replicas": 1}}
    health.observe(observe([config], [], [receiver]))
    base = (("invoker_kind", "BackupConfiguration"), ("invoker_name", "base"), ("namespace", "demo"))
    assert samples(fetch(health, "/metrics")[1])[("stashplan_backupconfiguration_wal_receiver", base)] == 1
    health.observe(observe([config], [], [{**receiver, "spec": {"replicas": 0}}]))  # paused
    assert "stashplan_backupconfiguration_wal_receiver{" not in fetch(health, "/metrics")[1]


@pytest.mark.parametrize("pushgateway", ["http://127.0.0.1:9/", ""])
def test_the_loop_exports_a_planned_receiver_only_with_a_pushgateway_its_heartbeat_can_reach(
    health: HealthServer, tmp_path: Path, pushgateway: str
) -> None:
    """Without a Pushgateway URL the receivers push no heartbeat; saying they should run would raise
    StashplanWALReceiverNeverChecked for ever."""
    from stashplan.api import builtin_addons, validate_objects
    from stashplan.cluster.local.store import LocalCluster
    from stashplan.desired.world import Settings
    from stashplan.operator.loop import LoopContext, run_loop
    from tests.unit.test_wal_receive_plan import world

    docs = [o for objs in world({"walArchive": "receive"}).values() for o in objs]
    manifests = validate_objects([("w.yaml", d) for d in docs])
    cluster = LocalCluster(tmp_path / "state.db")
    try:
        run_loop(LoopContext(cluster, 0.01, load_manifests=lambda: manifests, addons=builtin_addons(),
                             settings=Settings(pushgateway_url=pushgateway), max_iterations=1, health=health))
        assert [d["metadata"]["name"] for d in cluster.list("Deployment", "demo")] == ["nightly-wal-receive"]
    finally:
        cluster.close()
    got = samples(fetch(health, "/metrics")[1])
    key = ("stashplan_backupconfiguration_wal_receiver",
           (("invoker_kind", "BackupConfiguration"), ("invoker_name", "nightly"), ("namespace", "demo")))
    assert got.get(key) == (1 if pushgateway else None)


def test_a_former_leader_waiting_as_a_standby_exports_nothing_about_the_objects(health: HealthServer) -> None:
    """Otherwise its last view stays on /metrics beside the new leader's: a session it saw Running passes its
    deadline there for ever (StashplanSessionPastTimeout), a configuration deleted since stays."""
    config = {"kind": "BackupConfiguration", "metadata": {"name": "daily", "namespace": "demo"},
              "spec": {"schedule": "0 2 * * *"}}
    running = {"kind": "BackupSession", "metadata": {"name": "daily-1", "namespace": "demo"},
               "spec": {"invoker": {"name": "daily"}},
               "status": {"phase": "Running", "sessionDeadline": "2024-05-02T02:30:00Z"}}
    health.heartbeat(leader=True)
    health.observe(observe([config], [running]))
    text = fetch(health, "/metrics")[1]
    assert "stashplan_session_deadline_timestamp_seconds{" in text and 'invoker_name="daily"' in text
    health.heartbeat(leader=False)  # the lease went to another replica
    text = fetch(health, "/metrics")[1]
    assert 'invoker_name="daily"' not in text and "stashplan_session_deadline_timestamp_seconds{" not in text
    assert samples(text)[("stashplan_leader", ())] == 0
