"""Hypothesis strategies for manifests `plan` must survive: seeds from tests/data/manifests and specs/examples
mutated field by field or byte by byte, and objects generated from the CRD schemas in specs/crds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SEED_FILES = sorted(
    p for folder in (ROOT / "tests" / "data" / "manifests", ROOT / "specs" / "examples")
    for p in folder.rglob("*") if p.suffix in (".yaml", ".yml", ".json")
)
SEED_TEXTS = [p.read_text() for p in SEED_FILES]


def _docs(text: str) -> list[dict]:
    try:
        return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


SEED_DOCS = [d for text in SEED_TEXTS for d in _docs(text)]
SCHEMAS = {
    crd["spec"]["names"]["kind"]: (crd["spec"]["group"] + "/" + crd["spec"]["versions"][0]["name"],
                                   crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    for crd in (yaml.safe_load(p.read_text()) for p in sorted((ROOT / "specs" / "crds").glob("*.yaml")))
}


def _field_names(schema: Any, out: set[str]) -> set[str]:
    if isinstance(schema, dict):
        for key, sub in (schema.get("properties") or {}).items():
            out.add(key)
            _field_names(sub, out)
        for key in ("items", "additionalProperties"):
            _field_names(schema.get(key), out)
    return out


FIELD_NAMES = sorted(set().union(*(_field_names(s, set()) for _, s in SCHEMAS.values())))
KINDS = sorted({*SCHEMAS, "Secret", "Namespace", "List", "Widget", ""})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(["", "0", "-1", "1e9", "*/5 * * * *", "@every 1m", "10m", "-5s",
                                           "sqlite:////tmp/x.db", "postgresql://127.0.0.1:5432/", "${args}",
                                           "${VAR:=x}", "$(rm -rf /)", "a" * 300, "../../etc/passwd",
                                           "UPPER_case", "ünïcode", "--file=/tmp/x", "-cmd '.shell id'"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12)),
                                                 inner, max_size=3)), max_leaves=6)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple, op: str, value: Any, key: str) -> Any:
    if not path:
        return value if op == "replace" else doc
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        doc = dict(doc)
        if rest:
            doc[head] = _mutate(doc[head], rest, op, value, key)
        elif op == "delete":
            doc.pop(head, None)
        elif op == "insert" and isinstance(doc[head], dict):
            doc[head] = {**doc[head], key: value}
        elif op == "duplicate" and isinstance(doc[head], list):
            doc[head] = doc[head] + doc[head][:1]
        else:
            doc[head] = value
    elif isinstance(doc, list):
        doc = list(doc)
        if rest:
            doc[head] = _mutate(doc[head], rest, op, value, key)
        elif op == "delete":
            del doc[head]
        else:
            doc[head] = value
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """One to four field-level mutations of seed documents, as YAML or JSON."""
    docs = [SEED_DOCS[i] for i in draw(st.lists(st.integers(0, len(SEED_DOCS) - 1), min_size=1, max_size=3))]
    out = []
    for doc in docs:
        for _ in range(draw(st.integers(1, 4))):
            paths = _paths(doc)
            path = paths[draw(st.integers(0, len(paths) - 1))]
            op = draw(st.sampled_from(["replace", "delete", "insert", "duplicate"]))
            value = draw(values) if op in ("replace", "insert") else None
            key = draw(st.sampled_from(FIELD_NAMES)) if op == "insert" else ""
            doc = _mutate(doc, path, op, value, key)
        out.append(doc)
    if draw(st.booleans()) and len(out) == 1:
        return json.dumps(out[0], default=str)
    return yaml.safe_dump_all(out, sort_keys=False, allow_unicode=True)


YAML_BITS = [":", "-", "&a", "*a", "!!", "!!binary", "{", "}", "[", "]", "\"", "'", "\n", "#", "|", ">", "%", "@",
             "\t", "  ", "---\n", "...\n", "<<: *a\n", "? ", ",", "\x00", "\ufeff", "~", "null", "0x1F", "1e400"]


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    """Byte-level mutations of seed files: inserted YAML punctuation, deleted spans, repeated or cut lines."""
    text = draw(st.sampled_from(SEED_TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "dupline", "truncate"]))
        if op == "insert":
            text = text[:pos] + draw(st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=5))) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 40)):]
        elif op == "dupline":
            lines = text.splitlines(keepends=True) or [""]
            i = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: i + 1] + lines[i:])
        else:
            text = text[:pos]
    return text


def _from_schema(schema: dict, depth: int = 0) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if depth > 5:
        return scalars
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        optional = {k: _from_schema(v, depth + 1) for k, v in props.items()}
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries({}, optional=optional)
        if isinstance(extra, dict):
            base = st.builds(lambda a, b: {**a, **b}, base,
                             st.dictionaries(st.text(max_size=10), _from_schema(extra, depth + 1), max_size=2))
        return base
    if kind == "array":
        return st.lists(_from_schema(schema.get("items") or {}, depth + 1), max_size=3)
    if kind == "string":
        return st.one_of(st.text(max_size=20), scalars.filter(lambda v: isinstance(v, str)))
    if kind == "integer":
        return st.one_of(st.integers(-10, 10**6), st.integers())
    if kind == "boolean":
        return st.booleans()
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(-5, 100), st.text(max_size=8))
    return values


SCHEMA_STRATEGIES = {kind: _from_schema(schema) for kind, (_, schema) in SCHEMAS.items()}


@st.composite
def schema_documents(draw: st.DrawFn) -> str:
    """Objects generated from a CRD's openAPIV3Schema (then given a plausible identity half the time)."""
    kind = draw(st.sampled_from(sorted(SCHEMAS)))
    obj = draw(SCHEMA_STRATEGIES[kind])
    if not isinstance(obj, dict):
        obj = {"spec": obj}
    if draw(st.booleans()):
        obj["apiVersion"], obj["kind"] = SCHEMAS[kind][0], kind
        obj["metadata"] = {"name": draw(st.sampled_from(["a", "app-db", "x" * 70, "Bad_Name", ""])),
                           "namespace": draw(st.sampled_from(["demo", "default", "", "Nope!"]))}
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)


manifests = st.one_of(mutated_documents(), mutated_texts(), schema_documents())
