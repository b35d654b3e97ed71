"""A base-backup BackupConfiguration with Task param walArchive=receive, in local mode, on a real PostgreSQL 15 that
does not archive: the loop's iterations start its WAL receiver (the Deployment's process), which creates the slot
and streams commits into the Repository; killed with -9, it is restarted by a later iteration; paused, the
configuration's receiver stops and the slot goes idle (kept); a receiver whose Deployment ends or moves to
another slot drops the slot it no longer uses. Between base backups the receiver keeps the Repository's
window and its Pushgateway gauges current, with a heartbeat that stops while it is frozen."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from providers.storage import open_storage
from stashplan.api import builtin_addons, load_paths
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.health import ObservedCollector
from stashplan.operator.iteration import LocalControllers, run_once
from stashplan.operator.loop_metrics import Observed, observe
from stashplan.pitr import continuity, walstore
from stashplan.pitr.walnames import parse_lsn
from stashplan.repository import Repository
from tests.e2e.base_backup_loop import triggered_base_backup
from tests.fixtures.databases import PG_BIN
from tests.fixtures.pitr import ArchivingPostgres, basebackup_objects
from tests.fixtures.pushgateway import read_metrics

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
NS = "demo"
SLOT = "stashplan_e2e"
KEY = (NS, "pg-base-wal-receive")
STREAMING = f"SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = '{SLOT}'"


def _objects(pg: ArchivingPostgres, folder: Path, *, paused: bool = False, slot: str = SLOT) -> list[dict]:
    docs = basebackup_objects(pg, NS, prune=False)
    config = next(d for d in docs if d["kind"] == "BackupConfiguration")
    config["spec"]["task"]["params"] = [
        {"name": "walArchive", "value": "receive"},
        {"name": "walSlot", "value": slot},
        {"name": "walPartialInterval", "value": "0.5"},
    ]
    config["spec"]["paused"] = paused
    folder.mkdir(exist_ok=True)
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    return load_paths([folder])


def _received_to(pg: ArchivingPostgres, segment: str) -> int:
    """How far the archived partial (or whole) `segment` is known to reach; 0 when it is not there."""
    with Repository.open(open_storage(pg.repo), pg.repo_password) as repo:
        if segment in walstore.listed(repo):
            return 1 << 62
        header = walstore.header_of(repo, segment + ".partial")
    return parse_lsn(str(header["received_to"])) if header and header.get("received_to") else 0


def _committed(pg: ArchivingPostgres, name: str) -> tuple[str, int]:
    pg.sql(f"INSERT INTO items(name) VALUES ('{name}')")
    return pg.sql("SELECT pg_walfile_name(pg_current_wal_lsn())"), parse_lsn(
        pg.sql("SELECT pg_current_wal_lsn()")
    )


class _Loop:
    """A local loop over the configuration's objects (its receiver supervised as a process), iterated until a
    check holds; the receiver's log is shown when it does not."""

    def __init__(self, pg: ArchivingPostgres, tmp_path: Path, pushgateway: str = "") -> None:
        self.state = state = tmp_path / "state.db"
        self.cluster = LocalCluster(state)
        env = {**cluster_settings("local", state).env(), "PATH": f"{PG_BIN}:{os.environ['PATH']}"}
        if pushgateway:  # the Jobs and the receiver push their metrics there
            env["PROMETHEUS_PUSHGATEWAY_URL"] = pushgateway
        self.controllers = LocalControllers.create(self.cluster, env, tmp_path / "logs")
        self.objs = _objects(pg, tmp_path / "manifests")
        self.log = tmp_path / "logs" / f"{KEY[0]}_{KEY[1]}.log"

    def iterate(self) -> None:
        run_once(self.cluster, manifests=self.objs, addons=builtin_addons(), controllers=self.controllers)

    def until(self, what: str, check: Callable[[], bool], seconds: float = 120) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.iterate()
            if check():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; receiver log: {self.log.read_text()[-3000:]}")

    def close(self) -> None:
        self.controllers.stop()
        self.cluster.close()


def test_the_loop_runs_the_receiver_restarts_it_after_a_kill_and_stops_it_when_paused(
    streaming_postgres: ArchivingPostgres, tmp_path: Path
) -> None:
    pg = streaming_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    loop = _Loop(pg, tmp_path)
    cluster, controllers, iterate, until = loop.cluster, loop.controllers, loop.iterate, loop.until
    active = STREAMING
    try:
        iterate()
        deploy = cluster.get("Deployment", *KEY)
        assert deploy["spec"]["replicas"] == 1
        first = controllers.deployments.procs[KEY].proc
        assert first is not None, loop.log.read_text() if loop.log.exists() else "no log"
        until("the receiver to create the slot and stream", lambda: pg.sql(active) == "t")
        segment, lsn = _committed(pg, "first")
        until("the first commit in the repository", lambda: _received_to(pg, segment) >= lsn)
        [available] = cluster.get("Deployment", *KEY)["status"]["conditions"]
        assert (available["status"], available["reason"]) == ("True", "ProcessRunning")

        os.kill(first.pid, signal.SIGKILL)
        until(
            "the exit to be seen",
            lambda: (
                cluster.get("Deployment", *KEY)["status"]["readyReplicas"] == 0
                or controllers.deployments.procs[KEY].restarts > 0
            ),
        )

        def restarted() -> bool:
            proc = controllers.deployments.procs[KEY].proc
            return proc is not None and proc.pid != first.pid and pg.sql(active) == "t"

        until("a new receiver streaming through the slot", restarted)
        segment, lsn = _committed(pg, "after-restart")
        until("the commit after the restart in the repository", lambda: _received_to(pg, segment) >= lsn)
        second = controllers.deployments.procs[KEY].proc
        assert second is not None

        loop.objs = _objects(pg, tmp_path / "manifests", paused=True)
        iterate()
        assert cluster.get("Deployment", *KEY)["spec"]["replicas"] == 0
        assert KEY not in controllers.deployments.procs and second.poll() is not None
        until("the slot to go idle", lambda: pg.sql(active) == "f", seconds=30)
        [available] = cluster.get("Deployment", *KEY)["status"]["conditions"]
        assert available["reason"] == "ScaledToZero"
        assert _slots(pg) == [SLOT]  # paused, not gone: the slot keeps the WAL for when it resumes
    finally:
        loop.close()


def _slots(pg: ArchivingPostgres) -> list[str]:
    return sorted(filter(None, pg.sql("SELECT slot_name FROM pg_replication_slots").split()))


def test_a_receiver_whose_deployment_ends_or_changes_slot_drops_the_slot_it_no_longer_uses(
    streaming_postgres: ArchivingPostgres, tmp_path: Path
) -> None:
    """A forgotten slot makes the server keep WAL until its disk fills: walSlot changed, the old slot is dropped
    and the new one streams; the configuration deleted, its receiver drops the slot as it stops."""
    pg = streaming_postgres
    loop = _Loop(pg, tmp_path)
    renamed = "stashplan_e2e_renamed"
    try:
        loop.until("the receiver to stream", lambda: pg.sql(STREAMING) == "t")
        assert _slots(pg) == [SLOT]
        loop.objs = _objects(pg, tmp_path / "manifests", slot=renamed)
        loop.until("the old slot dropped and the new one streaming", lambda: _slots(pg) == [renamed] and pg.sql(
            f"SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = '{renamed}'") == "t")
        assert "now streams through slot stashplan_e2e_renamed: dropped replication slot stashplan_e2e" in \
            loop.log.read_text()

        loop.objs = [o for o in loop.objs if o["kind"] != "BackupConfiguration"]
        loop.cluster.delete("BackupConfiguration", NS, KEY[1].removesuffix("-wal-receive"))  # its Deployment too
        loop.until("the receiver to stop and drop its slot", lambda: _slots(pg) == [], seconds=60)
        assert KEY not in loop.controllers.deployments.procs
        assert "is gone: dropped replication slot stashplan_e2e_renamed" in loop.log.read_text()
    finally:
        loop.close()


def test_between_base_backups_the_receiver_keeps_the_repository_window_current(
    streaming_postgres: ArchivingPostgres, tmp_path: Path
) -> None:
    pg = streaming_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    loop = _Loop(pg, tmp_path)
    until = loop.until

    def pitr() -> dict:
        return dict((loop.cluster.get("Repository", NS, "repo").get("status") or {}).get("pitr") or {})

    try:
        until("the receiver to stream", lambda: pg.sql(STREAMING) == "t")
        base = subprocess.run(
            [*pg.stashplan, "pg", "basebackup", "-r", pg.repo, "--host", "127.0.0.1", "--port", str(pg.port),
             "--pg-basebackup", str(PG_BIN / "pg_basebackup")],
            env=pg.env(), capture_output=True, text=True)  # fmt: skip
        assert base.returncode == 0, base.stderr
        until("a window in the Repository's status", lambda: "lastRecoverableTime" in pitr())
        conditions = {
            c["type"]: c for c in loop.cluster.get("Repository", NS, "repo")["status"]["conditions"]
        }
        assert conditions["WALContinuous"]["status"] == "True", conditions
        first = pitr()["lastRecoverableTime"]
        time.sleep(1.1)  # the next commit is in a later second
        _committed(pg, "later")
        until("the window to grow with what the receiver received",
              lambda: str(pitr().get("lastRecoverableTime", "")) > str(first))  # fmt: skip
        assert pitr()["gaps"] == 0
    finally:
        loop.close()


def _series(pushgateway: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every series of metric `name` the Pushgateway holds for Repository `repo`: its labels and value."""
    return [
        (dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(read_metrics(pushgateway))
        for sample in family.samples
        if sample.name == name and sample.labels.get("name") == "repo"
    ]


def test_between_base_backups_the_receiver_pushes_the_window_metrics_in_place_of_the_base_backups(
    streaming_postgres: ArchivingPostgres, pushgateway: str, tmp_path: Path
) -> None:
    pg = streaming_postgres
    pg.sql("CREATE TABLE items(id serial PRIMARY KEY, name text NOT NULL)")
    loop = _Loop(pg, tmp_path, pushgateway)
    try:
        loop.until("the receiver to stream", lambda: pg.sql(STREAMING) == "t")
        triggered_base_backup(loop.cluster, loop.controllers, loop.objs, loop.state, tmp_path / "logs", NS)
        [(labels, after_backup)] = _series(pushgateway, continuity.LAST)
        [(repo_labels, integrity)] = _series(pushgateway, "stash_repository_integrity")
        assert labels == repo_labels and labels["invoker_name"] == "pg-base" and integrity == 1

        def pushed_after(seen: float) -> Callable[[], bool]:
            return lambda: any(v > seen for _, v in _series(pushgateway, continuity.LAST))

        # the base backup's own end is received after its check (which may find nothing recoverable yet)
        loop.until("the receiver to push the base backup's window", pushed_after(after_backup))
        [(_, received)] = _series(pushgateway, continuity.LAST)
        time.sleep(1.1)  # the next commit is in a later second
        _committed(pg, "later")
        loop.until("the receiver to push the later commit's time", pushed_after(received))
        # the receiver's push replaced the base backup's series (one, same labels) and kept its other metrics
        assert [found for found, _ in _series(pushgateway, continuity.LAST)] == [labels]
        assert [found for found, _ in _series(pushgateway, continuity.GAPS)] == [labels]
        assert _series(pushgateway, "stash_repository_integrity") == [(repo_labels, 1.0)]
        [(_, size)] = _series(pushgateway, "stash_repository_size_bytes")
        assert size > 0
        # the server now writes nothing: the receiver finds the archive complete after the last commit, which is
        # what StashplanWALArchiveBehind measures from (an idle server's last recoverable time only ages)
        [(_, last)] = _series(pushgateway, continuity.LAST)
        loop.until("the receiver to report the archive complete after the last commit",
                   lambda: any(v >= last and found == labels for found, v in _series(pushgateway, continuity.CAUGHT_UP)))

        # its heartbeat carries the labels of the operator's word that it should run (what the stale alert joins)
        deployments = loop.cluster.list("Deployment", NS)
        configs = loop.cluster.list("BackupConfiguration", NS)
        operator = _labels_of(collect_observed(observe(configs, [], deployments)),
                              "stashplan_backupconfiguration_wal_receiver")
        assert operator == [{"namespace": NS, "invoker_kind": "BackupConfiguration", "invoker_name": "pg-base"}]
        [(beat, _)] = _heartbeats(pushgateway)
        assert {k: v for k, v in beat.items() if k not in ("job", "instance")} == operator[0]

        # frozen (SIGSTOP), the receiver's heartbeat stops; it goes on when the process does
        proc = loop.controllers.deployments.procs[KEY].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            [(_, every)] = _series_named(pushgateway, continuity.REFRESH_EVERY)
            [(_, frozen_at)] = _heartbeats(pushgateway)
            time.sleep(2.5 * every)
            [(_, still)] = _heartbeats(pushgateway)
            assert still == frozen_at
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        loop.until("the heartbeat to go on after the freeze",
                   lambda: any(v > frozen_at for _, v in _heartbeats(pushgateway)), seconds=3 * every + 30)
    finally:
        loop.close()


def _series_named(pushgateway: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(read_metrics(pushgateway))
            for sample in family.samples if sample.name == name]  # fmt: skip


def _heartbeats(pushgateway: str) -> list[tuple[dict[str, str], float]]:
    return _series_named(pushgateway, continuity.REFRESHED)


def collect_observed(observed: Observed) -> list:
    """The operator's /metrics families for `observed`, as its health server collects them."""
    collector = ObservedCollector()
    collector.update(observed)
    return list(collector.collect())


def _labels_of(families: list, name: str) -> list[dict[str, str]]:
    return [dict(s.labels) for f in families for s in f.samples if s.name == name]
