"""The generated CRDs: up to date on disk, Kubernetes-structural, valid, and accepting our own manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from stashplan.api import crd_manifests, load_paths, render_crds_yaml, write_crds
from stashplan.api.crds import crd_files

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "specs" / "crds"
GOOD = ROOT / "tests" / "data" / "manifests" / "good"


def _by_kind() -> dict[str, dict]:
    return {crd["spec"]["names"]["kind"]: crd for crd in crd_manifests()}


def _walk(node: dict[str, Any], path: str) -> list[str]:
    """Structural-schema violations under `node` (Kubernetes apiextensions rules we rely on)."""
    found = []
    for banned in ("$ref", "anyOf", "oneOf", "allOf", "not", "$defs", "title"):
        if banned in node:
            found.append(f"{path}: has {banned}")
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if "type" not in node and not preserve:
        found.append(f"{path}: no type")
    if "properties" in node and node.get("type") != "object":
        found.append(f"{path}: properties without type object")
    if "properties" in node and "additionalProperties" in node:
        found.append(f"{path}: both properties and additionalProperties")
    if node.get("type") == "array" and "items" not in node:
        found.append(f"{path}: array without items")
    for name, child in (node.get("properties") or {}).items():
        found.extend(_walk(child, f"{path}.{name}"))
    if isinstance(node.get("items"), dict):
        found.extend(_walk(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


def test_crd_files_on_disk_match_the_models() -> None:
    expected = crd_files()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in CRD_DIR.glob("*.yaml")}
    assert on_disk == expected, "specs/crds/ is out of date with stashplan/api/models: run `make crds`"


def test_crds_with_stash_groups_scopes_and_short_names() -> None:
    crds = _by_kind()
    assert set(crds) == {"Repository", "BackupConfiguration", "BackupSession", "RestoreSession", "Task",
                         "Function", "AppBinding", "BackupBlueprint"}
    assert crds["BackupBlueprint"]["spec"]["scope"] == "Cluster"
    assert crds["BackupBlueprint"]["spec"]["names"]["shortNames"] == ["bb"]
    assert crds["Repository"]["metadata"]["name"] == "repositories.stash.appscode.com"
    assert crds["Repository"]["spec"]["versions"][0]["name"] == "v1alpha1"
    assert crds["BackupConfiguration"]["spec"]["versions"][0]["name"] == "v1beta1"
    assert crds["AppBinding"]["spec"]["group"] == "appcatalog.appscode.com"
    assert crds["Task"]["spec"]["scope"] == "Cluster" and crds["Function"]["spec"]["scope"] == "Cluster"
    assert crds["BackupSession"]["spec"]["scope"] == "Namespaced"
    short = {kind: crd["spec"]["names"].get("shortNames") for kind, crd in crds.items()}
    assert short["Repository"] == ["repo"] and short["BackupConfiguration"] == ["bc"]
    assert short["RestoreSession"] == ["restore"] and short["Function"] == ["fn"] and short["Task"] == ["task"]


def test_status_subresource_only_for_kinds_with_status() -> None:
    with_status = {k for k, crd in _by_kind().items() if "subresources" in crd["spec"]["versions"][0]}
    assert with_status == {"Repository", "BackupConfiguration", "BackupSession", "RestoreSession"}


def test_printer_columns_are_stashs() -> None:
    columns = {k: [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
               for k, crd in _by_kind().items()}
    assert columns["BackupConfiguration"] == ["Task", "Schedule", "Paused", "Phase", "Age"]
    assert columns["BackupSession"] == ["Invoker-Type", "Invoker-Name", "Phase", "Duration", "Age"]
    assert columns["RestoreSession"] == ["Repository", "Phase", "Duration", "Age"]
    assert columns["Repository"] == ["Integrity", "Size", "Snapshot-Count", "Last-Successful-Backup", "Age"]


@pytest.mark.parametrize("kind", ["Repository", "BackupConfiguration", "BackupSession", "RestoreSession", "Task",
                                  "Function", "AppBinding", "BackupBlueprint"])
def test_schemas_are_structural(kind: str) -> None:
    schema = _by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, kind) == []
    assert "$ref" not in render_crds_yaml()


def test_crds_validate_against_the_kubernetes_openapi() -> None:
    for crd in crd_manifests():
        kubernetes_validate.validate(crd, "1.37.0", strict=True)


def test_free_form_parts_preserve_unknown_fields_and_typed_parts_are_typed() -> None:
    spec = _by_kind()["BackupConfiguration"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    runtime = props["runtimeSettings"]["properties"]
    assert runtime["pod"]["properties"]["affinity"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert runtime["container"]["properties"]["nice"]["properties"]["adjustment"]["maximum"] == 19
    assert props["backupHistoryLimit"]["type"] == "integer" and props["backupHistoryLimit"]["default"] == 1
    assert props["retentionPolicy"]["required"] == ["name", "prune"]
    assert props["task"]["properties"]["params"]["items"]["properties"]["value"]["type"] == "string"


def test_crd_schemas_accept_the_loaded_example_manifests() -> None:
    schemas = {k: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for k, crd in _by_kind().items()}
    checked = 0
    for obj in load_paths([GOOD]):
        if obj["kind"] in schemas:
            jsonschema.validate(obj, schemas[obj["kind"]])
            checked += 1
    assert checked == 8


def test_crd_schema_rejects_a_wrong_type() -> None:
    schema = _by_kind()["BackupConfiguration"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    config = next(o for o in load_paths([GOOD]) if o["kind"] == "BackupConfiguration")
    config["spec"]["backupHistoryLimit"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def test_write_crds_and_render_agree(tmp_path: Path) -> None:
    written = write_crds(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(crd_files())
    docs = list(yaml.safe_load_all(render_crds_yaml()))
    assert docs == crd_manifests()
    assert [yaml.safe_load(p.read_text()) for p in written] == crd_manifests()
