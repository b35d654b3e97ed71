"""Continuity you can see, on a real PostgreSQL 15 archiving into a Repository in local mode: after a base backup
(Task postgres-basebackup-15) the Repository's status carries the recoverable window and WALContinuous True;
once a segment is deleted from the archive, the next base backup sets WALContinuous False naming it and pushes
stashplan_pg_wal_gaps 1 to a real Pushgateway."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from stashplan.api import builtin_addons, load_paths
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once
from tests.e2e.base_backup_loop import triggered_base_backup
from tests.fixtures.pitr import ArchivingPostgres, basebackup_objects
from tests.fixtures.pushgateway import read_metrics

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
NS = "demo"


def _objects(pg: ArchivingPostgres) -> list[dict]:
    return basebackup_objects(pg, NS, prune=False)


def _base_backup(cluster: LocalCluster, controllers: LocalControllers, objs: list[dict], state: Path,
                 logs: Path) -> dict:
    """Trigger a base backup and run the loop until its session is Succeeded; the Repository then."""
    session = triggered_base_backup(cluster, controllers, objs, state, logs, NS)
    repository = cluster.get("Repository", NS, "repo")
    assert _condition(session) == _condition(repository), session["status"]
    return repository


def _condition(obj: dict) -> dict:
    """The WALContinuous condition of a Repository or a BackupSession, without its transition time."""
    [found] = [c for c in obj["status"].get("conditions") or [] if c["type"] == "WALContinuous"]
    return {k: v for k, v in found.items() if k != "lastTransitionTime"}


def _gauge(text: str, name: str) -> float:
    [value] = re.findall(rf"^{name}{{[^}}]*name=\"repo\"[^}}]*}} (\S+)$", text, re.M)
    return float(value)


def test_repository_status_and_metrics_show_the_window_and_a_deleted_segment(
    archiving_postgres: ArchivingPostgres, pushgateway: str, tmp_path: Path
) -> None:
    pg = archiving_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    state, logs = tmp_path / "state.db", tmp_path / "logs"
    cluster = LocalCluster(state)
    env = {**cluster_settings("local", state).env(), "PROMETHEUS_PUSHGATEWAY_URL": pushgateway}
    controllers = LocalControllers.create(cluster, env, logs)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "all.yaml").write_text(yaml.safe_dump_all(_objects(pg)))
    objs = load_paths([tmp_path / "manifests"])
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)

    repository = _base_backup(cluster, controllers, objs, state, logs)
    pitr = repository["status"]["pitr"]
    first = datetime.fromisoformat(pitr["firstRecoverableTime"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(pitr["lastRecoverableTime"].replace("Z", "+00:00"))
    assert first <= last and (pitr["timeline"], pitr["gaps"]) == (1, 0), pitr
    assert _condition(repository)["status"] == "True", _condition(repository)
    text = read_metrics(pushgateway)
    assert _gauge(text, "stashplan_pg_wal_gaps") == 0
    assert _gauge(text, "stashplan_pg_last_recoverable_timestamp_seconds") == pytest.approx(last.timestamp(), abs=1)
    # every metric the stashplan.pitr alert rules read is pushed (test_monitoring_prometheus leaves them to this test)
    assert _gauge(text, "stashplan_pg_wal_verified_timestamp_seconds") >= last.timestamp() - 1

    segments = []
    for n in range(3):
        pg.sql(f"INSERT INTO items(name) VALUES ('row-{n}')")
        segments.append(pg.switch_wal())
    lost = segments[1]
    (Path(pg.repo[6:]) / "wal" / lost[:8] / lost).unlink()

    repository = _base_backup(cluster, controllers, objs, state, logs)
    condition = _condition(repository)
    assert (condition["status"], condition["reason"]) == ("False", "WALGapFound"), condition
    assert f"timeline 1: segment {lost} is missing" in condition["message"]
    assert repository["status"]["pitr"]["gaps"] == 1
    assert lost in repository["status"]["pitr"]["firstGap"]
    assert _gauge(read_metrics(pushgateway), "stashplan_pg_wal_gaps") == 1
