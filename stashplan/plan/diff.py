"""The diff: what of an existing object a wanted one speaks about (server-filled fields left out), and the
field-level differences between them, explained by deepdiff where lists differ. Pure."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from stashplan.plan.model import FieldDiff
from stashplan.secrets import MASK


def project(actual: Any, wanted: Any) -> Any:
    """The part of `actual` that `wanted` speaks about: server-filled fields are left out."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        out = {}
        for k, v in wanted.items():
            if k in actual:
                a = actual[k]
                out[k] = project(a, v) if isinstance(v, dict | list) else a
        return out
    if isinstance(wanted, list) and isinstance(actual, list) and len(wanted) == len(actual):
        return [project(a, w) if isinstance(w, dict | list) else a for a, w in zip(actual, wanted, strict=True)]
    return actual


def covers(actual: Any, wanted: Any) -> bool:
    """Whether `project(actual, wanted) == wanted`, decided without building the projection (the loop's
    common case: nothing changed)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return False
        for k, v in wanted.items():
            if k not in actual:
                return False
            a = actual[k]
            if a != v and not (isinstance(v, dict | list) and covers(a, v)):  # equal subtrees compare in C
                return False
        return True
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(actual) != len(wanted):
            return False
        return all(a == w or (isinstance(w, dict | list) and covers(a, w)) for a, w in zip(actual, wanted, strict=True))
    return bool(actual == wanted)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def keyed_conditions(status: Any) -> Any:
    """Conditions keyed by type (for a readable diff); lastTransitionTime is not a change of its own."""
    if not isinstance(status, dict) or not isinstance(status.get("conditions"), list):
        return status
    conds = {str(c.get("type")): f"{c.get('status')}, {c.get('reason', '')}: {c.get('message', '')}".replace(", : ", "")
             for c in status["conditions"] if isinstance(c, dict)}
    return {**status, "conditions": conds}


def _leaves(value: Any, prefix: str) -> list[tuple[str, Any]]:
    """(dotted path, value) of every non-dict leaf under `value`, sorted by path."""
    if not isinstance(value, dict) or not value:
        return [(prefix, value)]
    out: list[tuple[str, Any]] = []
    for k in sorted(value):
        out += _leaves(value[k], f"{prefix}.{k}" if prefix else str(k))
    return out


def field_diff(before: Any, after: Any) -> tuple[FieldDiff, ...]:
    if before == after:  # the common case in a loop; deepdiff only explains real differences
        return ()
    if isinstance(before, dict) and isinstance(after, dict) and before and after:
        # Descend through dicts ourselves; deepdiff explains only the subtrees that differ.
        out: list[FieldDiff] = []
        for key in sorted(set(before) | set(after), key=str):
            if key not in after:
                out.append(FieldDiff(str(key), before[key], None, "remove"))
            elif key not in before:
                out.append(FieldDiff(str(key), None, after[key], "add"))
            elif before[key] != after[key]:
                out += [FieldDiff(f"{key}.{d.path}" if d.path and not d.path.startswith("[") else f"{key}{d.path}",
                                  d.before, d.after, d.op)
                        for d in field_diff(before[key], after[key])]
        return tuple(out)
    if not isinstance(before, dict | list) or not isinstance(after, dict | list):
        return (FieldDiff("", before, after, "change"),)
    if isinstance(before, dict) and isinstance(after, dict) and (not before or not after):
        return tuple(
            [FieldDiff(sys.intern(k), None, v, "add") for k, v in _leaves(after, "") if not before]
            + [FieldDiff(sys.intern(k), v, None, "remove") for k, v in _leaves(before, "") if not after]
        )
    # Only lists that differ get here: a plan without such a change starts without importing deepdiff.
    from deepdiff import DeepDiff

    dd = DeepDiff(before, after, view="tree", verbose_level=2)
    diffs: list[FieldDiff] = []
    for report, levels in dd.items():
        for level in levels:
            path = _path(level.path(output_format="list"))
            if report.endswith("_added"):
                diffs.append(FieldDiff(path, None, level.t2, "add"))
            elif report.endswith("_removed"):
                diffs.append(FieldDiff(path, level.t1, None, "remove"))
            else:
                diffs.append(FieldDiff(path, level.t1, level.t2, "change"))
    return tuple(sorted(diffs, key=lambda d: d.path))


def mask_secret_diffs(kind: str, diffs: tuple[FieldDiff, ...]) -> tuple[FieldDiff, ...]:
    if kind != "Secret":
        return diffs
    return tuple(
        FieldDiff(d.path, None if d.before is None else MASK, None if d.after is None else MASK, d.op)
        if d.path.startswith(("data", "stringData")) else d
        for d in diffs
    )


def shared_diffs(diffs: tuple[FieldDiff, ...], shared: dict[tuple, FieldDiff]) -> tuple[FieldDiff, ...]:
    """`diffs` with each one equal to an earlier one (of another object) replaced by it: the statuses of 50,000
    new configurations repeat most of theirs. Values compare with their types (1 and True stay apart)."""
    out = []
    for d in diffs:
        key = (d.path, d.op, type(d.before), d.before, type(d.after), d.after)
        try:
            out.append(shared.setdefault(key, d))
        except TypeError:  # a dict or list value: kept as it is
            out.append(d)
    return tuple(out)
