"""specs/deploy and `render_install`: schema-valid manifests with the operator's required properties."""

from __future__ import annotations

import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from stashplan.errors import StashplanError
from stashplan.operator.install import DEFAULT_IMAGE, crds, deploy_manifests, install_objects, render_install
from stashplan.packaged import specs_dir

K8S_VERSION = "1.30.0"


def by_kind(objs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("obj", install_objects(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_every_install_manifest_validates_against_the_kubernetes_schema(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_install_stream_has_the_crds_rbac_operator_and_pushgateway_in_dependency_order() -> None:
    objs = list(yaml.safe_load_all(render_install("backups", "registry.local/stashplan:dev")))
    kinds = [o["kind"] for o in objs]
    assert kinds[0] == "Namespace"
    crd_names = {o["spec"]["names"]["kind"] for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert {
        "Repository",
        "BackupConfiguration",
        "BackupSession",
        "RestoreSession",
        "Task",
        "Function",
    } <= crd_names
    assert max(i for i, k in enumerate(kinds) if k == "CustomResourceDefinition") < kinds.index("Deployment")
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        assert kinds.index(kind) < kinds.index("Deployment")
    by_kind(objs, "Deployment", "stashplan-pushgateway")
    by_kind(objs, "Service", "stashplan-pushgateway")


def test_install_moves_every_namespaced_object_and_the_binding_to_the_given_namespace() -> None:
    objs = deploy_manifests("backups", "registry.local/stashplan:dev")
    assert by_kind(objs, "Namespace")["metadata"]["name"] == "backups"
    for obj in objs:
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "backups", obj["kind"]
    subjects = by_kind(objs, "ClusterRoleBinding")["subjects"]
    assert subjects == [{"kind": "ServiceAccount", "name": "stashplan", "namespace": "backups"}]
    env = {
        e["name"]: e.get("value")
        for e in by_kind(objs, "Deployment", "stashplan")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PROMETHEUS_PUSHGATEWAY_URL"] == "http://stashplan-pushgateway.backups.svc:9091"
    assert env["STASHPLAN_IMAGE"] == "registry.local/stashplan:dev"


def test_install_sets_the_operator_image() -> None:
    pod = by_kind(deploy_manifests("ns", "registry.local/stashplan:dev"), "Deployment", "stashplan")
    assert [c["image"] for c in pod["spec"]["template"]["spec"]["containers"]] == [
        "registry.local/stashplan:dev"
    ]
    default = by_kind(deploy_manifests(), "Deployment", "stashplan")
    assert default["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_IMAGE


def test_install_refuses_an_empty_namespace_or_image() -> None:
    with pytest.raises(ValueError, match="--namespace"):
        render_install("", "img")
    with pytest.raises(ValueError, match="--image"):
        render_install("ns", "")


def test_install_names_the_deploy_file_missing_from_a_broken_installation(tmp_path: Path) -> None:
    deploy = shutil.copytree(specs_dir("deploy"), tmp_path / "deploy")
    (deploy / "pushgateway.yaml").unlink()
    with pytest.raises(StashplanError, match=r"install: pushgateway.yaml is missing from .*/deploy"):
        deploy_manifests(folder=deploy)


def test_install_names_the_crd_missing_from_a_broken_installation(tmp_path: Path) -> None:
    folder = shutil.copytree(specs_dir("crds"), tmp_path / "crds")
    assert len(crds(folder)) == 8
    (folder / "backupsessions.stash.appscode.com.yaml").unlink()
    with pytest.raises(StashplanError, match=r"install: backupsessions.stash.appscode.com.yaml is missing"):
        crds(folder)


def test_operator_runs_two_non_root_replicas_with_probes_and_resources() -> None:
    deploy = by_kind(deploy_manifests(), "Deployment", "stashplan")
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "stashplan"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["http"]
    assert port == 8080


def test_image_build_installs_the_database_clients_and_runs_as_the_manifests_non_root_user() -> None:
    text = (Path(__file__).resolve().parents[2] / ".ci" / "image.sh").read_text()
    for package in ("postgresql-client", "mariadb-client", "redis-tools", "sqlite3", "python3"):
        assert package in text
    uid = by_kind(deploy_manifests(), "Deployment", "stashplan")["spec"]["template"]["spec"][
        "securityContext"
    ]["runAsUser"]
    assert f"--config.user {uid}:{uid}" in text and f"stashplan:x:{uid}:{uid}:" in text
