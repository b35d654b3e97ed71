"""Loading manifests: YAML/JSON files and directories -> validated Kubernetes-shaped dicts with defaults.
Every problem of every file is collected and raised once as ManifestError. Reads files; no other I/O."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from stashplan.api import kubedb
from stashplan.api.models import MODELS
from stashplan.api.models.common import check_dns_label, check_dns_subdomain
from stashplan.api.problems import validation_problems
from stashplan.api.refusals import api_refusal, field_refusals, kind_refusal
from stashplan.errors import ManifestError
from stashplan.kinds import KINDS

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
PASSTHROUGH_FIELDS = {
    "Secret": {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"},
    "Namespace": {"apiVersion", "kind", "metadata", "spec", "status"},
}
SUPPORTED_KINDS = (*MODELS, *PASSTHROUGH_FIELDS)
DEFAULT_NAMESPACE = "default"
_TYPE_NAMES = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


try:  # libyaml's parser is ~8x faster; the constructor (and our duplicate-key check) stays Python
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]


# Aliases may repeat a node; their expansion is what every consumer walks. Like Kubernetes' decoder, refuse
# a document whose aliases expand it far beyond its written size (a "billion laughs" bomb).
ALIAS_BUDGET = 20_000  # expanded nodes allowed beyond 4x the written ones


class AliasBombError(yaml.YAMLError):
    """A document's aliases expand beyond the budget."""


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(written nodes, nodes after expanding aliases), iteratively and memoised on node identity."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return len(sizes), sizes[id(root)]


class _UniqueKeyLoader(_SafeLoader):
    """A SafeLoader that rejects duplicate mapping keys (a silent overwrite hides typos) and keeps YAML 1.1
    floats and base-60 numbers as their text: Kubernetes has no float fields, and `version: 10.10` must
    not become "10.1" (nor `value: 1:30` become 90)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if len(set(keys)) == len(keys):  # the common case: no key twice (merge keys included)
            return super().construct_mapping(node, deep=deep)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue  # complex keys and merge keys are left to PyYAML
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_document(self, node: yaml.Node) -> Any:
        written, expanded = _expanded_size(node)
        if expanded > 4 * written + ALIAS_BUDGET:
            raise AliasBombError(f"aliases expand {written} written nodes to {expanded} "
                                 f"(more than 4x + {ALIAS_BUDGET}); refusing a possible alias bomb")
        return super().construct_document(node)

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:  # type: ignore[override]
        """Short strings interned: 50,000 manifests repeat the same kinds, namespaces and names many times."""
        if type(node) is not yaml.ScalarNode:  # a mapping tagged !!str: PyYAML's rules (and errors)
            return self.construct_scalar(node)  # type: ignore[no-any-return]
        value: str = node.value
        return sys.intern(value) if len(value) <= 64 else value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> str:  # type: ignore[override]
        return str(node.value)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int | str:  # type: ignore[override]
        if ":" in str(node.value):
            return str(node.value)
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:str", _UniqueKeyLoader.construct_yaml_str)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _UniqueKeyLoader.construct_yaml_float)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


class _AnchorlessLoader(_UniqueKeyLoader):
    """For text without any '&': no anchors, so no aliases (an alias needs one), and nothing to expand."""

    def construct_document(self, node: yaml.Node) -> Any:
        return super(_UniqueKeyLoader, self).construct_document(node)


def manifest_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The manifest files under `paths` (directories recursively, sorted; dot-files skipped), and problems."""
    files: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in MANIFEST_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return files, problems


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based document number, parsed document) of a YAML or JSON file; raises ValueError with the line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            yield 1, json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from None
        return
    try:
        loader = _UniqueKeyLoader if "&" in text else _AnchorlessLoader
        yield from enumerate(yaml.load_all(text, Loader=loader), start=1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        context = ""
        if exc.context and exc.context_mark is not None and exc.problem:
            context = f" ({exc.context} started at line {exc.context_mark.line + 1})"
        raise ValueError(f"{where}invalid YAML: {exc.problem or exc.context}{context}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ValueError("invalid YAML: nested too deeply") from None


def read_objects(files: Sequence[Path]) -> tuple[list[tuple[str, dict]], list[str]]:
    """(source label, raw dict) for every non-empty document; `kind: List` is expanded into its items."""
    objs: list[tuple[str, dict]] = []
    problems: list[str] = []
    for path in files:
        label = str(path)
        try:
            docs = list(_documents(path))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{label}: cannot read: {exc.__class__.__name__}: {getattr(exc, 'strerror', exc)}")
            continue
        except ValueError as exc:
            problems.append(f"{label}: {exc}")
            continue
        for index, doc in docs:
            if doc is None:
                continue
            items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
            for item in items if isinstance(items, list) else [items]:
                if isinstance(item, dict):
                    objs.append((label, item))
                elif item is not None:
                    problems.append(
                        f"{label}: document {index}: expected an object with apiVersion and kind, "
                        f"found {_TYPE_NAMES.get(type(item), type(item).__name__)}"
                    )
    return objs, problems


def _ident(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(obj.get("kind") or "?"), str(name) if name else "<unnamed>"


def _check_passthrough(kind: str, obj: dict) -> list[tuple[str, str]]:
    """Light checks of a Secret or Namespace: apiVersion, known top-level fields, name, string values."""
    found: list[tuple[str, str]] = []
    if obj.get("apiVersion") != "v1":
        found.append(("apiVersion", f"must be 'v1' for {kind}"))
    for field in sorted(set(obj) - PASSTHROUGH_FIELDS[kind]):
        found.append((field, f"unknown field {field!r}"))
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        found.append(("metadata.name", "required field is missing"))
    else:
        try:
            (check_dns_label if kind == "Namespace" else check_dns_subdomain)(str(meta["name"]))
        except ValueError as exc:
            found.append(("metadata.name", str(exc)))
        if kind == "Secret" and meta.get("namespace") is not None:
            try:
                check_dns_label(str(meta["namespace"]))
            except ValueError as exc:
                found.append(("metadata.namespace", str(exc)))
    if kind == "Secret":
        for field in ("data", "stringData"):
            values = obj.get(field)
            if values is None:
                continue
            if not isinstance(values, dict):
                found.append((field, "must be a mapping of key to string"))
                continue
            for key, value in values.items():
                if not isinstance(value, str):
                    found.append((f"{field}.{key}", "must be a string (quote it)"))
                elif field == "data":
                    try:
                        base64.b64decode(value, validate=True)
                    except binascii.Error:
                        found.append((f"{field}.{key}", "is not valid base64 (use stringData for plain text)"))
    return found


def _validate_one(obj: dict) -> tuple[dict | None, list[tuple[str, str]]]:
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        return None, [("kind", "required field is missing")]
    if kind in PASSTHROUGH_FIELDS:
        problems = _check_passthrough(kind, obj)
        return (None if problems else dict(obj)), problems
    if kubedb.is_kubedb(obj):  # noted and used to derive its AppBinding; never applied
        problems = kubedb.problems(obj)
        return (None if problems else dict(obj)), problems
    model: type[BaseModel] | None = MODELS.get(kind)
    if model is None:
        return None, []  # refused (see _refused_kind)
    try:
        typed = model.model_validate(obj)
    except ValidationError as exc:
        return None, validation_problems(model, exc)
    return typed.model_dump(mode="json", by_alias=True, exclude_none=True), []


def _same_field(a: str, b: str) -> bool:
    """Whether two field paths name the same field or one lies under the other (one line for it is enough)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _refused_kind(obj: dict) -> str | None:
    """Why an object of this kind is not run by stashplan (one refusal line), or None."""
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind or kind in PASSTHROUGH_FIELDS or kind in MODELS:
        return None
    if kubedb.is_kubedb(obj):
        return kubedb.refusal(obj)
    return kind_refusal(kind) or f"unsupported kind {kind!r}; supported: {', '.join(SUPPORTED_KINDS)}"


def _default_namespace(obj: dict) -> dict:
    info = KINDS.get(str(obj.get("kind")))
    meta = dict(obj.get("metadata") or {})
    if (info is not None and info.namespaced) or kubedb.is_kubedb(obj):
        meta["namespace"] = meta.get("namespace") or DEFAULT_NAMESPACE
    else:
        meta.pop("namespace", None)
    return {**obj, "metadata": meta}


def _raw_refusals(raw: dict) -> list[tuple[str, str]]:
    """`field_refusals` of an object that did not validate (its values may have any shape)."""
    try:
        return field_refusals(raw)
    except (TypeError, ValueError, AttributeError):
        return []


class _Validation:
    """Objects validated one at a time (each raw dict can be dropped as soon as it is checked); problems,
    refusals and duplicates accumulate across calls in the order the objects came."""

    def __init__(self, refusals: list[str] | None) -> None:
        self.problems: list[str] = []
        self.refused = self.problems if refusals is None else refusals
        self.out: list[dict] = []
        self.seen: dict[tuple[str, str, str], str] = {}

    def add(self, label: str, raw: dict) -> None:
        if not isinstance(raw, dict):
            self.problems.append(f"{label}: expected an object with apiVersion and kind, found {type(raw).__name__}")
            return
        kind, name = _ident(raw)
        if (why := api_refusal(raw.get("apiVersion"))) is not None:
            self.refused.append(f"{label}: {kind}/{name}: apiVersion: {why}")
            return
        if (why := _refused_kind(raw)) is not None:
            self.refused.append(f"{label}: {kind}/{name}: kind: {why}")
            return
        valid, found = _validate_one(raw)
        # An invalid object is left out with its lines (into `refusals` when given: the others still plan).
        self.refused.extend(f"{label}: {kind}/{name}: {path}: {msg}" for path, msg in found)
        if valid is None:  # its refused fields too (e.g. a workload target), not only what made it invalid
            reported = {path for path, _ in found}
            self.refused.extend(f"{label}: {kind}/{name}: {path}: {msg}" for path, msg in _raw_refusals(raw)
                                if not any(_same_field(path, r) for r in reported))
            return
        if fields := field_refusals(valid):
            self.refused.extend(f"{label}: {kind}/{name}: {path}: {msg}" for path, msg in fields)
            return
        valid = _default_namespace(valid)
        key = (kind, valid["metadata"].get("namespace", ""), name)
        if key in self.seen:
            self.refused.append(f"{label}: {kind}/{name}: metadata.name: duplicate; already defined in {self.seen[key]}")
            return
        self.seen[key] = label
        self.out.append(valid)


def validate_objects(objs: Sequence[tuple[str, dict]], refusals: list[str] | None = None) -> list[dict]:
    """Validate (source label, raw dict) pairs; returns Kubernetes-shaped dicts with defaults filled in.

    Raises ManifestError with one line per problem: "<source>: <Kind>/<name>: <field.path>: <message>",
    including duplicates (same kind, namespace and name twice). Invalid objects, objects of kinds stashplan does
    not run, or with a refused field set (`stashplan.api.fields`), are left out with one such line each: into
    `refusals` when a list is given (the rest still plans: one bad object never blocks the others), else among
    the problems."""
    validation = _Validation(refusals)
    for label, raw in objs:
        validation.add(label, raw)
    if validation.problems:
        raise ManifestError(validation.problems)
    return validation.out


def load_paths(paths: Sequence[str | Path], refusals: list[str] | None = None) -> list[dict]:
    """Load and validate manifests from files and directories (*.yaml, *.yml, *.json; multi-document).

    Directories are walked recursively in sorted order; empty documents are ignored. Every problem in
    every file is reported together as one ManifestError; refusals as `validate_objects` says. Each file is
    validated as soon as it is parsed, so only the validated objects stay in memory."""
    files, problems = manifest_files(paths)
    validation = _Validation(refusals)
    for path in files:
        objs, read_problems = read_objects([path])
        problems.extend(read_problems)
        for label, raw in objs:
            validation.add(label, raw)
    if problems or validation.problems:
        raise ManifestError([*problems, *validation.problems])
    return validation.out
