"""The WAL receiver's status refresh pushes the point-in-time window gauges to a real Pushgateway in place of
the base backup's: same job, same labels (an S3 Repository's bucket and prefix too), the base backup's other
repository metrics kept, and once the receiver has caught up with its server, when it did; with each refresh its
heartbeat, under the labels the operator's stashplan_backupconfiguration_wal_receiver has; an unreachable
Pushgateway is one warning line without its credentials."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from providers.storage import storage_from_repository
from stashplan.pitr import continuity
from stashplan.repository import Repository
from stashplan.transfer.context import load_configuration
from stashplan.transfer.run import TransferOptions, backup
from stashplan.transfer.wal_receive import refresh_status
from tests.fixtures.pushgateway import read_metrics
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.transfer import StashWorld


def _series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == name]  # fmt: skip


def _backed_up(w: StashWorld, sqlite_file: Path, pushgateway: str = "", repo: str = "repo", *,
               backend: dict | None = None, secret: dict[str, str] | None = None) -> None:
    """BackupConfiguration `cfg` of a SQLite database into Repository `repo`, after one Succeeded backup."""
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.repository(repo, backend=backend, secret=secret)
    w.backup_config("cfg", "app-db", repo=repo)
    w.backup_session("cfg", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite", pushgateway_url=pushgateway)).ok


def _refresh(w: StashWorld, url: str, caught_up: float | None = None, every: float | None = None,
             now: datetime | None = None) -> None:
    """One status refresh of the receiver of BackupConfiguration `cfg`."""
    ctx = load_configuration(w.cluster, w.namespace, "cfg")
    repo = Repository.open(storage_from_repository(ctx.repository, ctx.storage_secret), ctx.password)
    try:
        refresh_status(w.cluster, ctx, repo, now or datetime.now(UTC), url, caught_up, every)
    finally:
        repo.close()


def test_the_refresh_replaces_the_base_backups_window_series_and_keeps_its_other_metrics(
    stash_world: StashWorld, sqlite_file: Path, s3_bucket: S3Bucket, pushgateway: str
) -> None:
    w = stash_world
    backend = {"s3": {"endpoint": s3_bucket.endpoint.url, "bucket": s3_bucket.name, "prefix": "demo/app-db"}}
    _backed_up(w, sqlite_file, pushgateway, "s3-repo", backend=backend, secret=s3_bucket.endpoint.env())
    [(labels, _)] = _series(read_metrics(pushgateway), "stash_repository_integrity")
    assert (labels["job"], labels["bucket"], labels["prefix"]) == ("backupconfiguration-demo-cfg", s3_bucket.name,
                                                                   "demo/app-db")  # fmt: skip

    _refresh(w, pushgateway)
    text = read_metrics(pushgateway)
    verified = _series(text, continuity.VERIFIED)
    assert [found for found, _ in verified] == [labels]  # nothing recoverable in a dump repository: still pushed
    assert _series(text, continuity.LAST) == [(labels, 0.0)]
    assert _series(text, "stash_repository_integrity") == [(labels, 1.0)]
    [(_, snapshots)] = _series(text, "stash_appscode_com_repository_snapshot_count")
    assert snapshots == 1

    assert _series(text, continuity.CAUGHT_UP) == []  # the receiver has not caught up with its server yet

    _refresh(w, pushgateway, caught_up=1_765_000_000.0)  # the next refresh replaces it again
    text = read_metrics(pushgateway)
    [(again, later)] = _series(text, continuity.VERIFIED)
    assert again == labels and later >= verified[0][1]
    assert _series(text, continuity.CAUGHT_UP) == [(labels, 1_765_000_000.0)]  # what the alert measures from


def test_an_unreachable_pushgateway_is_one_warning_without_credentials_and_the_status_is_written(
    stash_world: StashWorld, sqlite_file: Path, closed_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    w = stash_world
    _backed_up(w, sqlite_file)
    url = closed_port_url.replace("http://", "http://metrics:hunter2@")
    with caplog.at_level(logging.WARNING):
        _refresh(w, url)
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    line = record.getMessage()
    assert "\n" not in line and closed_port_url in line and "unreachable" in line
    assert "hunter2" not in line and "@" not in line
    assert w.status("Repository", "repo")["pitr"]["gaps"] == 0


def test_each_refresh_pushes_the_receivers_heartbeat_under_its_configurations_labels(
    stash_world: StashWorld, sqlite_file: Path, pushgateway: str
) -> None:
    w = stash_world
    _backed_up(w, sqlite_file, pushgateway)
    assert _series(read_metrics(pushgateway), continuity.REFRESHED) == []  # a base backup is no receiver

    first = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    _refresh(w, pushgateway, every=60.0, now=first)
    text = read_metrics(pushgateway)
    config = {"job": "backupconfiguration-demo-cfg", "instance": "", "namespace": "demo",
              "invoker_kind": "BackupConfiguration", "invoker_name": "cfg"}  # the operator gauge's, plus job
    assert _series(text, continuity.REFRESHED) == [(config, first.timestamp())]
    assert _series(text, continuity.REFRESH_EVERY) == [(config, 60.0)]
    later = datetime(2026, 12, 6, 12, 1, tzinfo=UTC)
    _refresh(w, pushgateway, every=60.0, now=later)
    assert _series(read_metrics(pushgateway), continuity.REFRESHED) == [(config, later.timestamp())]
