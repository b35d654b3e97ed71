"""The alert rules of specs/monitoring: promtool accepts them, their unit tests pass, every alert has its
annotations and runbook, and every metric and label they read is exported by the code (or proposed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.prometheus import (
    MONITORING,
    PROPOSED,
    ROOT,
    RULES,
    alerts,
    exported,
    label_names,
    metric_names,
    promtool,
    recorded,
    rules,
)

RULE_TESTS = sorted((MONITORING / "tests").glob("*.yaml"))


def test_promtool_accepts_the_rule_file() -> None:
    run = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_there_are_rule_unit_tests_for_every_alert() -> None:
    text = "".join(p.read_text() for p in RULE_TESTS)
    missing = [a["alert"] for a in alerts() if f"alertname: {a['alert']}" not in text]
    assert not missing, f"alerts without promtool unit tests: {missing}"


@pytest.mark.parametrize("rule_test", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests_pass(rule_test: Path) -> None:
    run = subprocess.run([promtool(), "test", "rules", rule_test.name], cwd=rule_test.parent,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_has_severity_summary_description_and_an_existing_runbook() -> None:
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        ann = alert["annotations"]
        assert ann["summary"] and ann["description"], name
        assert ann["runbook_url"] == f"docs/runbooks/{name}.md", name
        assert (ROOT / ann["runbook_url"]).is_file(), f"{name}: no {ann['runbook_url']}"


def test_every_runbook_belongs_to_an_alert() -> None:
    names = {a["alert"] for a in alerts()}
    pages = {p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md")} - {"README"}
    assert pages == names


def test_rules_read_only_exported_proposed_or_recorded_metrics_and_their_labels() -> None:
    known = exported()
    names = set(known) | set(PROPOSED) | recorded()
    labels = set().union(*known.values(), *PROPOSED.values())
    for rule in rules():
        name, expr = rule.get("alert") or rule["record"], rule["expr"]
        assert metric_names(expr) <= names, f"{name}: unknown metrics {metric_names(expr) - names}"
        assert label_names(expr) <= labels, f"{name}: unknown labels {label_names(expr) - labels}"


def test_name_extraction_sees_metrics_not_functions_keywords_or_labels() -> None:
    expr = ('time() - max by (namespace) (a_b{job=~"x-.+"}[5m] offset 1d) > on (job) group_left (x) '
            'clamp_min(0.25 * c:d, 3600) unless e == 1 and rate(f_total[$__rate_interval])')
    assert metric_names(expr) == {"a_b", "c:d", "e", "f_total"}
    assert label_names(expr) == {"namespace", "job", "x"}


def test_the_code_exports_stash_names_under_both_prefixes_and_the_operator_names() -> None:
    known = exported()
    for name in ("stash_appscode_com_backupsession_success", "stash_backup_session_success",
                 "stash_appscode_com_repository_integrity", "stash_restore_session_success",
                 "stashplan_leader", "stashplan_loop_iterations_total"):
        assert name in known, name
    assert {"invoker_kind", "invoker_name", "namespace", "repository"} <= known[
        "stash_appscode_com_backupsession_success"]
    assert not set(PROPOSED) & set(known), "a proposed metric is exported now: move it out of PROPOSED"
