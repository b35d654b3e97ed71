"""Metrics pushed to a real Pushgateway with Stash's names and labels; a down Pushgateway is a condition."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.pushgateway import read_metrics
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.transfer import REPO_PASSWORD, StashWorld


def sample(text: str, metric: str, **labels: str) -> float | None:
    """The value of the first sample of `metric` whose labels include `labels`."""
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(metric)}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            return float(m.group(2))
    return None


def setup_sqlite(w: StashWorld, sqlite_file: Path, password: str = "") -> None:
    w.appbinding(
        "app-db",
        f"sqlite://{sqlite_file}",
        app_type="stashplan.dev/sqlite",
        username="app" if password else "",
        password=password,
    )
    w.repository()
    w.backup_config("cfg", "app-db")


def test_successful_backup_pushes_session_target_host_and_repository_metrics(
    stash_world: StashWorld, sqlite_file: Path, pushgateway: str
) -> None:
    w = stash_world
    setup_sqlite(w, sqlite_file, password="db-secret-value")
    w.backup_session("cfg", "s1")
    assert backup(
        w.cluster, w.namespace, "s1", TransferOptions(database="sqlite", pushgateway_url=pushgateway)
    ).ok
    text = read_metrics(pushgateway)
    common = {
        "job": "backupconfiguration-demo-cfg",
        "invoker_kind": "BackupConfiguration",
        "invoker_name": "cfg",
        "namespace": "demo",
        "driver": "Restic",
        "repository": "repo",
    }
    for name in ("stash_appscode_com_backupsession_success", "stash_backup_session_success"):
        assert sample(text, name, **common) == 1
    target = {**common, "kind": "sqlite", "group": "stashplan.dev", "name": "app-db"}
    assert sample(text, "stash_appscode_com_backupsession_target_success", **target) == 1
    assert sample(text, "stash_backup_target_host_count_total", **target) == 1
    host = {**target, "hostname": "host-0"}
    assert sample(text, "stash_appscode_com_backupsession_host_backup_success", **host) == 1
    assert (sample(text, "stash_backup_host_data_size_bytes", **host) or 0) > 100
    assert sample(text, "stash_appscode_com_backupsession_host_data_uploaded_bytes", **host) is not None
    last = sample(text, "stash_appscode_com_backupsession_last_success_time_seconds", **common)
    assert last is not None and last > 1.7e9
    repo = {"backend": "local", "name": "repo", "namespace": "demo"}
    assert sample(text, "stash_appscode_com_repository_integrity", **repo) == 1
    assert sample(text, "stash_repository_snapshot_count", **repo) == 1
    assert (sample(text, "stash_appscode_com_repository_size_bytes", **repo) or 0) > 0
    assert sample(text, "stash_repository_snapshot_cleaned", **repo) == 0
    assert "db-secret-value" not in text and REPO_PASSWORD not in text
    assert w.condition("BackupSession", "s1", "MetricsPushed")["reason"] == "SuccessfullyPushedMetrics"
    assert w.condition("BackupSession", "s1", "RepositoryMetricsPushed")["status"] == "True"


def test_down_pushgateway_is_a_condition_and_the_backup_still_succeeds(
    stash_world: StashWorld, sqlite_file: Path, closed_port_url: str
) -> None:
    w = stash_world
    setup_sqlite(w, sqlite_file)
    w.backup_session("cfg", "s1")
    result = backup(
        w.cluster, w.namespace, "s1", TransferOptions(database="sqlite", pushgateway_url=closed_port_url)
    )
    assert result.ok
    assert w.status("BackupSession", "s1")["phase"] == "Succeeded"
    cond = w.condition("BackupSession", "s1", "MetricsPushed")
    assert cond["status"] == "False" and cond["reason"] == "FailedToPushMetrics"
    assert "unreachable" in cond["message"] and closed_port_url.split("//")[1] in cond["message"]
    assert w.condition("BackupSession", "s1", "RepositoryMetricsPushed")["status"] == "False"


def test_failed_backup_pushes_success_zero_and_when_and_why_it_failed(
    stash_world: StashWorld, tmp_path: Path, pushgateway: str
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{tmp_path}/missing.db")
    w.repository()
    w.backup_config("cfg", "app-db")
    w.backup_session("cfg", "s1")
    assert not backup(
        w.cluster, w.namespace, "s1", TransferOptions(database="sqlite", pushgateway_url=pushgateway)
    ).ok
    text = read_metrics(pushgateway)
    assert sample(text, "stash_appscode_com_backupsession_success", invoker_name="cfg") == 0
    assert sample(text, "stash_backup_host_backup_success", hostname="host-0") == 0
    assert "stash_appscode_com_backupsession_last_success_time_seconds" not in text
    assert "stash_repository_integrity" not in text
    failed = sample(text, "stashplan_backupsession_last_failure_timestamp_seconds", invoker_name="cfg",
                    invoker_kind="BackupConfiguration", namespace="demo", reason="TargetNotReady")
    assert failed is not None and failed > 1.7e9
    assert w.condition("BackupSession", "s1", "MetricsPushed")["status"] == "True"


def test_restore_pushes_restore_session_metrics(
    stash_world: StashWorld, sqlite_file: Path, tmp_path: Path, pushgateway: str
) -> None:
    w = stash_world
    setup_sqlite(w, sqlite_file)
    w.appbinding("new-db", f"sqlite://{tmp_path}/new.db")
    w.backup_session("cfg", "s1")
    assert backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite")).ok
    w.restore_session("r1", "new-db")
    assert restore(
        w.cluster, w.namespace, "r1", TransferOptions(database="sqlite", pushgateway_url=pushgateway)
    ).ok
    text = read_metrics(pushgateway)
    labels = {"job": "restoresession-demo-r1", "invoker_kind": "RestoreSession", "invoker_name": "r1"}
    assert sample(text, "stash_appscode_com_restoresession_success", **labels) == 1
    assert sample(text, "stash_restore_session_success", **labels) == 1
    assert sample(text, "stash_restore_host_restore_success", hostname="host-0", name="new-db") == 1
    assert (
        sample(text, "stash_appscode_com_restoresession_host_restore_duration_seconds", **labels) is not None
    )
    assert w.condition("RestoreSession", "r1", "MetricsPushed")["status"] == "True"


def test_s3_repository_backup_restore_and_repository_metric_labels(
    stash_world: StashWorld, sqlite_file: Path, tmp_path: Path, s3_bucket: S3Bucket, pushgateway: str
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.appbinding("new-db", f"sqlite://{tmp_path}/from-s3.db")
    backend = {"s3": {"endpoint": s3_bucket.endpoint.url, "bucket": s3_bucket.name, "prefix": "demo/app-db"}}
    w.repository("s3-repo", backend=backend, secret=s3_bucket.endpoint.env())
    w.backup_config("cfg", "app-db", repo="s3-repo")
    w.backup_session("cfg", "s1")
    result = backup(
        w.cluster, w.namespace, "s1", TransferOptions(database="sqlite", pushgateway_url=pushgateway)
    )
    assert result.ok, result.error
    keys = [o["Key"] for o in s3_bucket.endpoint.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]]
    assert keys and all(k.startswith("demo/app-db/") for k in keys)
    text = read_metrics(pushgateway)
    labels = {"backend": "s3", "bucket": s3_bucket.name, "prefix": "demo/app-db", "name": "s3-repo"}
    assert sample(text, "stash_appscode_com_repository_snapshot_count", **labels) == 1
    assert s3_bucket.endpoint.secret_access_key not in text
    w.restore_session("r1", "new-db", repo="s3-repo")
    assert restore(w.cluster, w.namespace, "r1", TransferOptions(database="sqlite")).ok
    rows = subprocess.run(
        ["sqlite3", f"{tmp_path}/from-s3.db", "SELECT group_concat(name) FROM items"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert rows == "alpha,beta,gamma"
