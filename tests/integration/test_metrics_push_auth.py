"""A Pushgateway behind HTTP basic auth (real prometheus-pushgateway with a web config): `user:password@` in
PROMETHEUS_PUSHGATEWAY_URL is sent as basic auth, so the metrics arrive; a wrong password is refused in one line
that names the URL without the credentials. `plan` and `apply`, which write the URL into every Job's
environment, refuse one with credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge
from typer.testing import CliRunner

from stashplan import metrics
from stashplan.cli import app
from tests.fixtures.pushgateway import AUTH_PASSWORD, AUTH_USER, read_metrics

EXAMPLES = Path(__file__).resolve().parents[2] / "stashplan" / "_specs" / "examples"


def _registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Gauge("stashplan_auth_probe", "a test gauge", registry=reg).set(42)
    return reg


def test_credentials_in_the_url_are_sent_as_basic_auth(pushgateway_with_auth: str) -> None:
    url = pushgateway_with_auth.replace("http://", f"http://{AUTH_USER}:{AUTH_PASSWORD}@")
    metrics.push(url, "auth-demo", _registry())
    assert 'stashplan_auth_probe{instance="",job="auth-demo"} 42' in read_metrics(
        pushgateway_with_auth, (AUTH_USER, AUTH_PASSWORD))


@pytest.mark.parametrize("userinfo", ["", f"{AUTH_USER}:wrong-pw@"])
def test_missing_or_wrong_credentials_are_refused_in_one_line_without_them(
        pushgateway_with_auth: str, userinfo: str) -> None:
    url = pushgateway_with_auth.replace("http://", f"http://{userinfo}")
    with pytest.raises(metrics.MetricsPushError) as err:
        metrics.push(url, "auth-demo", _registry())
    line = str(err.value)
    assert line == f"Pushgateway {pushgateway_with_auth} refused the push: HTTP 401 Unauthorized", line


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_refuse_a_pushgateway_url_with_credentials_that_jobs_would_carry(
        command: str, tmp_path: Path) -> None:
    """The Jobs get the URL in their environment (stored on each Job, shown in plans): credentials in it would be
    readable by anyone who may read Jobs, so the URL is refused before anything is planned or written."""
    state = tmp_path / "state.db"
    done = CliRunner().invoke(app, [command, "-f", str(EXAMPLES), "--state", str(state)],
                              env={"PROMETHEUS_PUSHGATEWAY_URL": "http://jobs:hunter2@pushgateway.example:9091"})
    assert done.exit_code == 2, done.output
    text = " ".join(done.output.replace("│", " ").split())  # the error box wraps its lines
    assert "http://pushgateway.example:9091 holds user:password" in text and "hunter2" not in text
    assert not state.exists()
