"""The Helm chart (specs/chart) against `stashplan install`: its default `helm template` renders the same objects
(less the Namespace, which `helm install --create-namespace` makes), `helm lint --strict` is clean, and each
switch of values.yaml changes what it says. Run by `make chart` (pytest --helm)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stashplan import __version__
from stashplan.operator.install import DEFAULT_IMAGE
from tests.fixtures.helm import CHART, Helm

pytestmark = pytest.mark.helm
MONITORING = Path(__file__).resolve().parents[2] / "specs" / "monitoring"


def key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def render(helm: Helm, *args: str, namespace: str = "stashplan-system") -> dict[tuple[str, str, str], dict]:
    out = helm("template", "stashplan", str(CHART), "--namespace", namespace, "--include-crds", *args).stdout
    objs = [d for d in yaml.safe_load_all(out) if d]
    found = {key(o): o for o in objs}
    assert len(found) == len(objs), "two objects of the same kind, namespace and name"
    return found


def refused(helm: Helm, *args: str) -> str:
    done = helm("template", "stashplan", str(CHART), *args, check=False)
    assert done.returncode != 0 and not done.stdout, (done.stdout, done.stderr)
    return done.stderr


def operator(objs: dict[tuple[str, str, str], dict], namespace: str = "stashplan-system") -> dict:
    return dict(objs[("Deployment", namespace, "stashplan")]["spec"]["template"]["spec"]["containers"][0])


def operator_image(objs: dict[tuple[str, str, str], dict], namespace: str) -> str:
    return str(operator(objs, namespace)["image"])


@pytest.mark.parametrize("namespace", ["stashplan-system", "backups"])
def test_the_default_chart_renders_exactly_what_stashplan_install_prints(helm: Helm, namespace: str) -> None:
    printed = subprocess.run([sys.executable, "-m", "stashplan", "install", "--namespace", namespace],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    installed = {key(o): o for o in yaml.safe_load_all(printed) if o and o["kind"] != "Namespace"}
    assert operator_image(installed, namespace) == DEFAULT_IMAGE
    rendered = render(helm, namespace=namespace)
    assert sorted(rendered) == sorted(installed)
    for k, obj in installed.items():
        assert rendered[k] == obj, k


def test_helm_lint_is_clean_and_the_chart_follows_stashplans_version(helm: Helm) -> None:
    done = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in done.stdout and "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout
    assert done.stderr == "", done.stderr
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == chart["version"] == __version__
    assert operator(render(helm))["image"] == DEFAULT_IMAGE == f"stashplan:{__version__}"


def test_image_replicas_leader_election_scope_and_resources_reach_the_operator(helm: Helm) -> None:
    objs = render(helm, "--set", "image.repository=registry.local/stashplan", "--set", "image.tag=dev",
                  "--set", "replicas=1", "--set", "leaderElection.enabled=false", "--set", "scope=opted-in",
                  "--set", "resources.limits.memory=1Gi", "--set", "extraArgs={--interval=30}")  # fmt: skip
    deploy = objs[("Deployment", "stashplan-system", "stashplan")]
    assert deploy["spec"]["replicas"] == 1
    container = operator(objs)
    assert container["image"] == "registry.local/stashplan:dev"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["STASHPLAN_IMAGE"] == "registry.local/stashplan:dev"
    assert container["args"] == ["apply", "--watch", "--cluster=kube", "--no-leader-elect", "--health-port=8080",
                                 "--scope=opted-in", "--interval=30"]  # fmt: skip
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert "--scope=all" in operator(render(helm, "--set", "scope=all"))["args"]
    assert not [a for a in operator(render(helm))["args"] if a.startswith("--scope")]  # the operator detects it


def test_bad_values_are_refused_with_one_message_naming_the_value(helm: Helm) -> None:
    assert "leaderElection.enabled" in refused(helm, "--set", "leaderElection.enabled=false")  # 2 replicas
    assert "scope" in refused(helm, "--set", "scope=some")
    assert "replicaz" in refused(helm, "--set", "replicaz=3")  # a typo is not silently ignored
    both = refused(helm, "--set", "pushgateway.url=http://pg.example:9091")
    assert "pushgateway: set url (an external Pushgateway) or enabled (the bundled one), not both" in both
    assert "enable one of them" in refused(helm, "--set", "serviceMonitor.enabled=true",
                                           "--set", "podMonitor.enabled=true")  # fmt: skip


def test_an_external_pushgateway_replaces_the_bundled_one(helm: Helm) -> None:
    objs = render(helm, "--set", "pushgateway.enabled=false", "--set", "pushgateway.url=http://pg.example:9091")
    assert not [k for k in objs if k[2] == "stashplan-pushgateway"]
    env = {e["name"]: e.get("value") for e in operator(objs)["env"]}
    assert env["PROMETHEUS_PUSHGATEWAY_URL"] == "http://pg.example:9091"
    none = render(helm, "--set", "pushgateway.enabled=false")
    assert "PROMETHEUS_PUSHGATEWAY_URL" not in {e["name"] for e in operator(none)["env"]}


def test_without_rbac_the_chart_leaves_out_the_serviceaccount_and_cluster_roles(helm: Helm) -> None:
    kinds = {k[0] for k in render(helm, "--set", "rbac.create=false")}
    assert not kinds & {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    assert "Deployment" in kinds


def test_monitoring_switches_render_specs_monitoring_for_the_prometheus_operator_and_grafana(helm: Helm) -> None:
    assert not [k for k in render(helm) if k[0] in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap")]
    objs = render(helm, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kps",
                  "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true",
                  "--set", "grafanaDashboard.namespace=grafana")  # fmt: skip
    rule = objs[("PrometheusRule", "stashplan-system", "stashplan")]
    assert rule["spec"] == yaml.safe_load((MONITORING / "stashplan-rules.yaml").read_text())
    dashboard = objs[("ConfigMap", "grafana", "stashplan-dashboard")]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["stashplan-dashboard.json"]) == json.loads(
        (MONITORING / "stashplan-dashboard.json").read_text())
    operator_monitor = objs[("ServiceMonitor", "stashplan-system", "stashplan")]
    assert operator_monitor["metadata"]["labels"]["release"] == "kps"
    assert operator_monitor["spec"]["selector"]["matchLabels"] == objs[
        ("Service", "stashplan-system", "stashplan-metrics")]["spec"]["selector"]
    pushgateway_monitor = objs[("ServiceMonitor", "stashplan-system", "stashplan-pushgateway")]
    assert pushgateway_monitor["spec"]["endpoints"][0]["honorLabels"] is True
    pods = render(helm, "--set", "podMonitor.enabled=true")
    assert pods[("PodMonitor", "stashplan-system", "stashplan")]["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    assert pods[("PodMonitor", "stashplan-system", "stashplan-pushgateway")]["spec"]["podMetricsEndpoints"][0][
        "honorLabels"] is True
