"""The alert rules and the dashboard on a real Prometheus: it scrapes a real Pushgateway after real
backups and restores (one backup failing, one failing then retried, one restore failing) and the
operator's /metrics endpoint while the real loop iterates over the same local-mode cluster (a paused
configuration, a session running with a timeOut), and every alert expression and dashboard query runs
through its HTTP API."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stashplan.api import builtin_addons
from stashplan.objects import rfc3339
from stashplan.operator.health import HealthServer
from stashplan.operator.loop import LoopContext, StopFlag, run_loop
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.prometheus import (
    PROPOSED,
    Prometheus,
    alerts,
    concrete,
    dashboard_targets,
    metric_names,
    recorded,
    rules,
)
from tests.fixtures.transfer import StashWorld

pytestmark = pytest.mark.slow
# The alerts whose expression holds right after these backups, and for which invokers.
EXPECTED = {
    "StashplanBackupFailed": {"cfg-bad"},
    "StashplanRestoreFailed": {"r-bad"},
}


@pytest.fixture
def monitored(
    stash_world: StashWorld, sqlite_file: Path, tmp_path: Path, pushgateway: str,
    prometheus_factory: Callable[[dict[str, str]], Prometheus],
) -> Iterator[Prometheus]:
    """Prometheus after the backups and restores, while the operator's endpoint still answers."""
    w = stash_world
    opts = TransferOptions(database="sqlite", pushgateway_url=pushgateway)
    sqlite = "stashplan.dev/sqlite"
    w.appbinding("ok-db", f"sqlite://{sqlite_file}", app_type=sqlite)
    w.appbinding("bad-db", f"sqlite://{tmp_path}/missing.db", app_type=sqlite)
    w.appbinding("retry-db", f"sqlite://{tmp_path}/retry.db", app_type=sqlite)
    w.appbinding("new-db", f"sqlite://{tmp_path}/new.db", app_type=sqlite)
    w.repository()
    for name, db in (("cfg-ok", "ok-db"), ("cfg-bad", "bad-db"), ("cfg-retry", "retry-db")):
        w.backup_config(name, db, timeout="1h")
    paused = w.backup_config("cfg-paused", "ok-db")
    w.cluster.replace({**paused, "spec": {**paused["spec"], "paused": True}})
    w.backup_session("cfg-ok", "ok-1")
    ok = backup(w.cluster, w.namespace, "ok-1", opts)
    assert ok.ok and ok.host.snapshot is not None
    w.backup_session("cfg-bad", "bad-1")
    assert not backup(w.cluster, w.namespace, "bad-1", opts).ok
    w.backup_session("cfg-retry", "retry-1")
    assert not backup(w.cluster, w.namespace, "retry-1", opts).ok
    shutil.copy(sqlite_file, tmp_path / "retry.db")
    w.backup_session("cfg-retry", "retry-2")
    assert backup(w.cluster, w.namespace, "retry-2", opts).ok
    # into another database: `latest` would be ambiguous between two targets' snapshots, so it is named
    w.restore_session("r-ok", "new-db", snapshots=[ok.host.snapshot.short_id])
    assert restore(w.cluster, w.namespace, "r-ok", opts).ok
    w.restore_session("r-bad", "new-db", snapshots=["0123abcd"])
    assert not restore(w.cluster, w.namespace, "r-bad", opts).ok

    # a session of cfg-ok still running within its timeOut, its Job started (no controller runs it here)
    w.backup_session("cfg-ok", "ok-2", deadline=rfc3339(datetime.now(UTC) + timedelta(hours=1)))
    w.cluster.create({"apiVersion": "batch/v1", "kind": "Job",
                      "metadata": {"name": "stash-backup-ok-2", "namespace": w.namespace}, "spec": {}})

    health = HealthServer(0, host="127.0.0.1")
    health.start()
    stop = StopFlag()
    loop = threading.Thread(target=run_loop, args=(LoopContext(
        w.cluster, interval=0.5, addons=builtin_addons(), stop=stop, health=health),), daemon=True)
    loop.start()
    prom = prometheus_factory({
        "pushgateway": pushgateway.removeprefix("http://"),
        "operator": f"127.0.0.1:{health.port}",
    })
    try:
        # a few scrapes, so that rate() and delta() have two samples of every series
        assert prom.wait_for("count_over_time(stashplan_leader[1m]) >= 4"), "the operator was not scraped"
        assert prom.wait_for("count_over_time(stash_appscode_com_restoresession_success[1m]) >= 4")
        assert prom.wait_for('ALERTS{alertname="StashplanRestoreFailed"}'), "the rules were not evaluated"
        yield prom
    finally:
        stop.set()
        loop.join(timeout=30)
        health.stop()


def test_alerts_hold_exactly_for_the_failed_backup_and_restore_not_the_retried_one(monitored: Prometheus) -> None:
    for alert in alerts():
        result = monitored.query(alert["expr"])
        got = {r["metric"].get("invoker_name", "") for r in result}
        assert got == EXPECTED.get(alert["alert"], set()), alert["alert"]
        for r in result:
            assert r["metric"]["namespace"] == "demo" and r["metric"]["invoker_kind"]
    # the real rule evaluation: the restore alert (no `for`) fires, the backup one waits its 15 minutes
    firing = monitored.query('ALERTS{alertname="StashplanRestoreFailed", alertstate="firing"}')
    assert [(a["metric"]["invoker_name"], a["metric"]["severity"]) for a in firing] == [("r-bad", "critical")]
    assert firing[0]["metric"]["job"] == "restoresession-demo-r-bad"
    pending = monitored.wait_for('ALERTS{alertname="StashplanBackupFailed", alertstate="pending"}')
    assert [a["metric"]["invoker_name"] for a in pending] == ["cfg-bad"]
    assert pending[0]["metric"]["invoker_kind"] == "BackupConfiguration"
    # the recording rules the alerts compare
    allowed = monitored.query("stashplan:backupconfiguration_allowed_age_seconds")
    assert {r["metric"]["invoker_name"]: float(r["value"][1]) for r in allowed} == {  # */5: 5 min + 1 h
        "cfg-ok": 3900.0, "cfg-bad": 3900.0, "cfg-retry": 3900.0, "cfg-paused": 3900.0}
    success = monitored.query("stashplan:backupconfiguration_last_success_age_seconds")
    assert {r["metric"]["invoker_name"] for r in success} == {"cfg-ok", "cfg-retry"}
    pushed = monitored.query("stashplan:backupconfiguration_last_push_age_seconds")
    assert {r["metric"]["invoker_name"] for r in pushed} == {"cfg-ok", "cfg-bad", "cfg-retry"}
    assert all(0 <= float(r["value"][1]) < 300 for r in pushed)


def test_every_dashboard_query_runs_and_those_on_exported_metrics_return_data(monitored: Prometheus) -> None:
    empty = []
    for title, expr, legend in dashboard_targets():
        result = monitored.query(concrete(expr))
        if not result and not metric_names(expr) & set(PROPOSED):
            empty.append(title)
        for label in re.findall(r"\{\{(\w+)\}\}", legend):  # the legend's labels are on every series
            assert all(r["metric"].get(label) for r in result), f"{title}: no label {label} in {result}"
    assert not empty, f"panels without data: {empty}"


def test_every_metric_the_rules_read_has_data_from_the_backups_and_the_loop(monitored: Prometheus) -> None:
    names = set().union(*(metric_names(r["expr"]) for r in rules())) - recorded()
    # The PITR rules' stashplan_pg_* metrics come from a base backup of an archiving server and from a WAL receiver,
    # which this fixture's dumps do not have: tests/e2e/test_pitr_continuity_local.py and test_pitr_receive_local.py
    # read each of them from a real Pushgateway, the latter with the operator's gauge of the receiver it runs.
    names = {n for n in names if not n.startswith("stashplan_pg_") and n != "stashplan_backupconfiguration_wal_receiver"}
    empty = sorted(n for n in names if not monitored.query(n))
    assert not empty, f"metrics the rules read without data: {empty}"


def test_the_loop_exports_each_configuration_and_the_running_session(monitored: Prometheus) -> None:
    def by_config(expr: str) -> dict[str, float]:
        return {r["metric"]["invoker_name"]: float(r["value"][1]) for r in monitored.query(expr)}

    assert by_config("stashplan_backupconfiguration_paused") == {
        "cfg-ok": 0, "cfg-bad": 0, "cfg-retry": 0, "cfg-paused": 1}
    assert set(by_config("stashplan_backupconfiguration_schedule_interval_seconds").values()) == {300}
    deadline = monitored.query("stashplan_session_deadline_timestamp_seconds")
    assert [(d["metric"]["session"], d["metric"]["invoker_name"]) for d in deadline] == [("ok-2", "cfg-ok")]
    objects = {(r["metric"]["kind"], r["metric"]["phase"]): float(r["value"][1])
               for r in monitored.query("stashplan_objects")}
    assert objects[("BackupSession", "Failed")] == 2 and objects[("BackupSession", "Running")] == 1
    assert objects[("BackupConfiguration", "Ready")] == 4
    failure = monitored.query("stashplan_backupsession_last_failure_timestamp_seconds")
    # the retried configuration keeps its last failure after its success: "last failure", not "failing"
    assert sorted((f["metric"]["invoker_name"], f["metric"]["reason"]) for f in failure) == [
        ("cfg-bad", "TargetNotReady"), ("cfg-retry", "TargetNotReady")]
    assert monitored.wait_for("sum(rate(stashplan_loop_iteration_duration_seconds_count[1m])) > 0")
