"""The Helm chart's copies (helm reads no file outside a chart) are those of specs/, and its version and default
image are stashplan's (what `make image` tags). The rendering itself is compared by test_chart_render (make chart)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stashplan import __version__
from stashplan.operator.install import DEFAULT_IMAGE, deploy_manifests

SPECS = Path(__file__).resolve().parents[2] / "specs"
CHART = SPECS / "chart"


def test_the_charts_crds_are_specs_crds() -> None:
    ours = {p.name: p.read_bytes() for p in (CHART / "crds").iterdir()}
    theirs = {p.name: p.read_bytes() for p in (SPECS / "crds").iterdir()}
    assert ours == theirs, "specs/chart/crds/ differs from specs/crds/: run `make crds`"


@pytest.mark.parametrize("name", ["stashplan-rules.yaml", "stashplan-dashboard.json"])
def test_the_charts_monitoring_files_are_specs_monitoring(name: str) -> None:
    assert (CHART / "files" / name).read_bytes() == (SPECS / "monitoring" / name).read_bytes(), (
        f"specs/chart/files/{name} differs: cp specs/monitoring/{name} specs/chart/files/")


def test_the_chart_is_stashplans_version_and_its_default_image_is_installs() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == __version__
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{values['image']['tag'] or chart['appVersion']}" == DEFAULT_IMAGE
    assert f"stashplan:{__version__}" == DEFAULT_IMAGE  # .ci/image.sh tags the image with the version


def test_the_charts_cluster_roles_are_specs_deploys() -> None:
    """The RBAC template read as helm renders its defaults (its only template actions: the rbac.create switch and
    the release namespace), without helm: the ClusterRoles change most often, and `make test` has no helm."""
    text = (CHART / "templates" / "rbac.yaml").read_text().replace("{{ .Release.Namespace }}", "stashplan-system")
    assert "{{" not in "".join(line for line in text.splitlines() if not line.startswith("{{-"))
    ours = [d for d in yaml.safe_load_all("\n".join(ln for ln in text.splitlines() if not ln.startswith("{{-"))) if d]
    theirs = [d for d in deploy_manifests() if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    assert ours == theirs, "specs/chart/templates/rbac.yaml differs from specs/deploy/rbac.yaml: copy its rules"
