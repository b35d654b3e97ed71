"""Plan-time refusals: the fields (and kinds) of `stashplan.api.fields.REFUSED` found in an object, each as
(field path, why), and the Markdown table of every field the README shows. Pure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stashplan.api.fields import HONOURED, INFORMATIONAL, REFUSED, REFUSED_KINDS, Rule

_BY_KIND: dict[str, list[Rule]] = {}
for _rule in REFUSED:
    _BY_KIND.setdefault(_rule.kind, []).append(_rule)
_KNOWN: dict[str, set[str]] = {}
for _rule in (*HONOURED, *INFORMATIONAL, *REFUSED):
    _KNOWN.setdefault(_rule.kind, set()).add(_rule.path)


def _values(node: Any, parts: list[str], prefix: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of every value at `parts` under `node` ("[]" walks list items)."""
    if not parts:
        yield prefix, node
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        key = head[:-2]
        items = node.get(key) if isinstance(node, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            yield from _values(item, rest, f"{prefix}.{key}[{i}]" if prefix else f"{key}[{i}]")
        return
    if isinstance(node, dict) and head in node:
        yield from _values(node[head], rest, f"{prefix}.{head}" if prefix else head)


def _wildcard(obj: dict, rule: Rule) -> Iterator[tuple[str, Any]]:
    """The keys under a `<parent>.*` rule's parent that no other rule of the kind names."""
    parent = rule.path[:-2]
    known = _KNOWN.get(rule.kind, set())
    for path, node in _values(obj, parent.split("."), ""):
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            full = f"{parent}.{key}"
            named = full in known or any(k.startswith(full + ".") for k in known)
            if not named:
                yield f"{path}.{key}", value


def field_refusals(obj: dict) -> list[tuple[str, str]]:
    """(field path, why) for every refused field set in `obj` (a validated, Kubernetes-shaped dict)."""
    out: list[tuple[str, str]] = []
    for rule in _BY_KIND.get(str(obj.get("kind")), ()):
        found = _wildcard(obj, rule) if rule.path.endswith(".*") else _values(obj, rule.path.split("."), "")
        for path, value in found:
            if rule.when(value):
                out.append((path, f"refused: {rule.what}"))
    return sorted(out)


def kind_refusal(kind: str) -> str | None:
    """Why stashplan does not run objects of `kind`, or None."""
    return REFUSED_KINDS.get(kind)


def api_refusal(api_version: object) -> str | None:
    """Why stashplan does not read objects of this apiVersion, or None: KubeStash's groups (`*.kubestash.com`,
    e.g. core.kubestash.com/v1alpha1) share kind names with Stash's (BackupConfiguration, RestoreSession) but
    not their schema, so they get one line instead of a field error per difference."""
    group = str(api_version or "").partition("/")[0] if "/" in str(api_version or "") else ""
    if group == "kubestash.com" or group.endswith(".kubestash.com"):
        return f"KubeStash's API ({api_version}) is not supported; stashplan reads Stash's stash.appscode.com API"
    return None


_KIND_ORDER = {k: i for i, k in enumerate(("Repository", "BackupConfiguration", "BackupSession", "RestoreSession",
                                           "AppBinding", "Task", "Function", "BackupBlueprint"))}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def fields_table() -> str:
    """The README's table: every field by kind, what stashplan does with it (or why it refuses it)."""
    rows = ["| kind | field | stashplan |", "|---|---|---|"]
    labelled = [*((r, "honoured") for r in HONOURED), *((r, "informational") for r in INFORMATIONAL),
                *((r, "**refused**") for r in REFUSED)]
    for rule, label in sorted(labelled, key=lambda e: (_KIND_ORDER.get(e[0].kind, 99), e[0].path)):
        rows.append(f"| {rule.kind} | `{rule.path}` | {label}: {_cell(rule.what)} |")
    for kind, why in REFUSED_KINDS.items():
        rows.append(f"| {kind} | (the kind) | **refused**: {_cell(why)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover - `python -m stashplan.api.refusals` prints the README table
    print(fields_table(), end="")
