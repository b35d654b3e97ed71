"""Every field of every kind stashplan serves is honoured (by a module that reads it) or refused at plan time:
the CRD schemas are walked against `stashplan.api.fields`, and the README's table is generated from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stashplan.api.crds import crd_manifests
from stashplan.api.fields import HONOURED, INFORMATIONAL, REFUSED, Rule
from stashplan.api.refusals import fields_table

ROOT = Path(__file__).resolve().parents[2]
RULES: tuple[Rule, ...] = (*HONOURED, *INFORMATIONAL, *REFUSED)


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, child in (node.get("properties") or {}).items():
        full = f"{path}.{key}" if path else key
        yield full, child
        yield from _walk(child, full)
    if "items" in node:
        yield from _walk(node["items"], path + "[]")


def _schema_paths() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for crd in crd_manifests():
        kind = crd["spec"]["names"]["kind"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema["properties"]["spec"], "spec"):
            out[(kind, path)] = node
    return out


def _covered(kind: str, path: str, node: dict[str, Any]) -> bool:
    parent = path.rsplit(".", 1)[0]
    for rule in RULES:
        if rule.kind != kind:
            continue
        if rule.path == path or path.startswith(rule.path + ".") or path.startswith(rule.path + "[]"):
            return True
        if rule.path == parent + ".*":
            return True
        if node.get("x-kubernetes-preserve-unknown-fields") and rule.path.startswith(path + "."):
            return True
    return False


def test_every_leaf_of_every_served_schema_is_honoured_or_refused() -> None:
    missing = []
    for (kind, path), node in _schema_paths().items():
        leaf = ("properties" not in node and "items" not in node) or node.get("x-kubernetes-preserve-unknown-fields")
        if leaf and not _covered(kind, path, node):
            missing.append(f"{kind} {path}")
    assert missing == [], "add these to stashplan/api/fields.py (HONOURED with the module, or REFUSED with why)"


def test_every_rule_names_a_field_the_schema_has() -> None:
    paths = _schema_paths()
    stale = []
    for rule in RULES:
        parts = rule.path.removesuffix(".*").split(".")
        prefixes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        known = [p for p in prefixes if (rule.kind, p) in paths]
        exact = known and known[0] == ".".join(parts)
        free = known and paths[(rule.kind, known[0])].get("x-kubernetes-preserve-unknown-fields")
        if not (exact or free):
            stale.append(f"{rule.kind} {rule.path}")
    assert stale == []


def test_every_honoured_field_is_read_by_the_module_it_names() -> None:
    unread = []
    for rule in HONOURED:
        source = (ROOT / rule.where).read_text(encoding="utf-8")
        key = [p for p in rule.path.replace("[]", "").split(".") if p != "*"][-1]
        if key not in source:
            unread.append(f"{rule.kind} {rule.path}: {key!r} not in {rule.where}")
    assert unread == []


def test_readme_table_is_generated_from_the_field_list() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert fields_table() in readme, "README.md's field table is stale: paste `python -m stashplan.api.refusals`"
