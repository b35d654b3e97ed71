"""CustomResourceDefinitions for the Stash kinds, with Kubernetes-structural openAPIV3Schemas generated
from the pydantic models, status subresources, short names and printer columns. `write_crds` writes files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from stashplan.api.models import MODELS
from stashplan.kinds import KINDS

CRD_KINDS = (
    "Repository",
    "BackupConfiguration",
    "BackupSession",
    "RestoreSession",
    "Task",
    "Function",
    "AppBinding",
    "BackupBlueprint",
)
SHORT_NAMES = {
    "Repository": ["repo"],
    "BackupConfiguration": ["bc"],
    "RestoreSession": ["restore"],
    "Task": ["task"],
    "Function": ["fn"],
    "AppBinding": ["app"],
    "BackupBlueprint": ["bb"],
}
_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
PRINTER_COLUMNS: dict[str, list[dict[str, str]]] = {
    "Repository": [
        {"name": "Integrity", "type": "boolean", "jsonPath": ".status.integrity"},
        {"name": "Size", "type": "string", "jsonPath": ".status.totalSize"},
        {"name": "Snapshot-Count", "type": "integer", "jsonPath": ".status.snapshotCount"},
        {"name": "Last-Successful-Backup", "type": "date", "jsonPath": ".status.lastBackupTime", "format": "date-time"},
        _AGE,
    ],
    "BackupConfiguration": [
        {"name": "Task", "type": "string", "jsonPath": ".spec.task.name"},
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        _AGE,
    ],
    "BackupSession": [
        {"name": "Invoker-Type", "type": "string", "jsonPath": ".spec.invoker.kind"},
        {"name": "Invoker-Name", "type": "string", "jsonPath": ".spec.invoker.name"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Duration", "type": "string", "jsonPath": ".status.sessionDuration"},
        _AGE,
    ],
    "RestoreSession": [
        {"name": "Repository", "type": "string", "jsonPath": ".spec.repository.name"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Duration", "type": "string", "jsonPath": ".status.sessionDuration"},
        _AGE,
    ],
    "Task": [_AGE],
    "Function": [
        {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
        _AGE,
    ],
    "BackupBlueprint": [
        {"name": "Task", "type": "string", "jsonPath": ".spec.task.name"},
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        _AGE,
    ],
    "AppBinding": [
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
        _AGE,
    ],
}
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_DROP_KEYS = {"title", "$defs", "additionalProperties", "const", "anyOf", "allOf", "$ref", "discriminator"}


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Rewrite one pydantic JSON-schema node into Kubernetes' structural form (no $ref, no null unions)."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in node:
            options = [o for o in node[combinator] if o != {"type": "null"}]
            outer = {k: v for k, v in node.items() if k != combinator}
            if len(options) == 1:
                return _structural({**options[0], **outer}, defs)
            return {**_annotations(outer), "type": "object", _PRESERVE: True} if options else {_PRESERVE: True}
    out: dict[str, Any] = {k: v for k, v in node.items() if k not in _DROP_KEYS}
    if "const" in node:
        out["enum"] = [node["const"]]
    if not isinstance(out.get("default"), str | int | float | bool):
        out.pop("default", None)
    extra = node.get("additionalProperties")
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
        if extra is True:
            out[_PRESERVE] = True
    elif out.get("type") == "object" or extra is not None:
        out["type"] = "object"
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _structural(extra, defs)
        else:
            out[_PRESERVE] = True
    if "items" in node:
        out["items"] = _structural(node["items"], defs)
    if "type" not in out:
        out[_PRESERVE] = True
    first = [k for k in ("type", "description") if k in out]
    return {**{k: out[k] for k in first}, **{k: v for k, v in out.items() if k not in first}}


def _annotations(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in ("description",) if k in node}


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The openAPIV3Schema of one kind: apiVersion/kind/metadata plus spec (and status) from the model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    props = raw["properties"]
    schema: dict[str, Any] = {
        "type": "object",
        "description": (model.__doc__ or model.__name__).strip().splitlines()[0],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _structural(props["spec"], defs),
        },
        "required": ["spec"],
    }
    if "status" in props:
        schema["properties"]["status"] = _structural(props["status"], defs)
    return schema


def crd_manifest(kind: str) -> dict[str, Any]:
    info = KINDS[kind]
    model = MODELS[kind]
    version: dict[str, Any] = {
        "name": info.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(model)},
        "additionalPrinterColumns": PRINTER_COLUMNS[kind],
    }
    if "status" in model.model_fields:
        version["subresources"] = {"status": {}}
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": info.plural,
        "singular": kind.lower(),
        "categories": ["stash", "appscode"] if info.group.startswith("stash") else ["catalog", "appscode"],
    }
    if kind in SHORT_NAMES:
        names["shortNames"] = SHORT_NAMES[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{info.group}",
            "labels": {"app.kubernetes.io/name": "stashplan"},
        },
        "spec": {
            "group": info.group,
            "names": names,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "versions": [version],
        },
    }


def crd_manifests() -> list[dict[str, Any]]:
    """CustomResourceDefinitions for the Stash kinds, in a fixed order."""
    return [crd_manifest(kind) for kind in CRD_KINDS]


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared sub-schemas out in full: CRDs must not contain YAML anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(obj: dict[str, Any]) -> str:
    return yaml.dump(
        obj, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=110, allow_unicode=True
    )


def crd_files(crds: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """File name -> YAML text of every CRD (`crds`, else crd_manifests()), as `write_crds` writes them."""
    return {f"{crd['metadata']['name']}.yaml": _dump(crd) for crd in (crd_manifests() if crds is None else crds)}


def render_crds_yaml(crds: list[dict[str, Any]] | None = None) -> str:
    """All CRDs (`crds`, else crd_manifests()) as one multi-document YAML stream (what `stashplan crds` prints)."""
    return "---\n".join(_dump(crd) for crd in (crd_manifests() if crds is None else crds))


def write_crds(out_dir: str | Path, crds: list[dict[str, Any]] | None = None) -> list[Path]:
    """Write one YAML file per CRD into `out_dir` (created if missing); returns the paths written."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in crd_files(crds).items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

