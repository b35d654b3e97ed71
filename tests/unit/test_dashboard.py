"""The Grafana dashboard of specs/monitoring: every query parses (promtool reads each as a rule), and
reads only metrics and labels the code exports, or the proposed ones listed in tests/fixtures/prometheus.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from tests.fixtures.prometheus import (
    DASHBOARD,
    PROPOSED,
    concrete,
    dashboard_queries,
    exported,
    label_names,
    metric_names,
    promtool,
)


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    queries = dashboard_queries()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": concrete(expr)} for i, (_, expr) in enumerate(queries)
    ]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    run = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(queries)} rules found" in run.stdout


def test_dashboard_reads_only_exported_or_proposed_metrics_and_their_labels() -> None:
    known = exported()
    names = set(known) | set(PROPOSED)
    labels = set().union(*known.values(), *PROPOSED.values())
    queries = dashboard_queries()
    doc = json.loads(DASHBOARD.read_text())
    for v in doc["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"]["query"]) if v["type"] == "query" else None
        if m:
            queries.append((f"variable {v['name']}", m.group(1)))
            assert m.group(2) in labels, v["name"]
    assert len(queries) > 20
    for title, expr in queries:
        assert metric_names(expr), f"{title}: no metric in {expr}"
        assert metric_names(expr) <= names, f"{title}: unknown metrics {metric_names(expr) - names}"
        assert label_names(expr) <= labels, f"{title}: unknown labels {label_names(expr) - labels}"


def test_dashboard_covers_what_an_operator_on_call_looks_for() -> None:
    used = set().union(*(metric_names(e) for _, e in dashboard_queries()))
    for name in (
        "stash_appscode_com_backupsession_last_success_time_seconds",
        "stashplan_backupconfiguration_schedule_interval_seconds",
        "stash_appscode_com_backupsession_duration_seconds",
        "stash_appscode_com_backupsession_host_data_size_bytes",
        "stash_appscode_com_backupsession_host_data_uploaded_bytes",
        "stash_appscode_com_repository_size_bytes",
        "stash_appscode_com_repository_integrity",
        "stash_appscode_com_backupsession_success",
        "stash_appscode_com_restoresession_success",
        "stashplan_leader",
        "stashplan_last_successful_iteration_timestamp_seconds",
    ):
        assert name in used, name


def test_panels_have_unique_ids_and_use_the_datasource_variable() -> None:
    doc = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
