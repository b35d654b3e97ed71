"""Server-side apply's field ownership on plain objects (metadata.managedFields, FieldsV1): the fields a manager
applied, those a new apply of it removes, the conflicts it meets with other managers, and the object it leaves.
Pure leaf: local mode's store applies with it, the planner predicts with it (an API server applies for itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stashplan.objects import is_managed

FIELD_MANAGER = "stashplan"
# Who wrote stashplan's objects before it applied server-side: the kubernetes client's default field manager
# (an API server names an Update after the User-Agent). On an object labelled managed-by stashplan, what they own
# counts as stashplan's, so an upgrade neither conflicts with itself nor keeps fields the manifests dropped.
LEGACY_MANAGERS = frozenset({"OpenAPI-Generator"})
# Metadata that names the object or is the server's: never part of what a manager applies.
_SERVER_META = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                          "managedFields", "generateName", "deletionTimestamp", "selfLink"})
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class OwnedConflict:
    """A field an apply would change that another manager owns."""

    path: str  # dotted: spec.schedule
    manager: str


def dotted(path: Path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def fieldset(obj: dict) -> dict:
    """FieldsV1 of an applied configuration: every field it sets; lists and empty maps are leaves (atomic)."""
    out: dict = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            meta = {k: v for k, v in (value or {}).items() if k not in _SERVER_META}
            if meta:
                out["f:metadata"] = _fields(meta)
            continue
        out[f"f:{key}"] = _fields(value)
    return out


def _fields(value: Any) -> dict:
    if isinstance(value, dict) and value:
        return {f"f:{k}": _fields(v) for k, v in value.items()}
    return {}


def _entries(obj: dict | None) -> list[dict]:
    """Managed-field entries of the object itself (a `status` subresource's entries own no spec field)."""
    found = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [e for e in found if isinstance(e, dict) and e.get("subresource", "") in ("", None)]


def _is_own_apply(entry: dict, manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == "Apply"


def _counts_as_own(obj: dict | None, entry: dict, manager: str) -> bool:
    if _is_own_apply(entry, manager):
        return True
    return (manager == FIELD_MANAGER and entry.get("operation") == "Update"
            and entry.get("manager") in LEGACY_MANAGERS and is_managed(obj or {}))


def _union(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _union(out[k], v) if k in out and isinstance(out[k], dict) and isinstance(v, dict) else v
    return out


def applied_by(obj: dict | None, manager: str = FIELD_MANAGER) -> dict:
    """The FieldsV1 `manager` owns on `obj` by applying ({} when it never applied); for stashplan on its own
    objects, also what its earlier versions wrote (LEGACY_MANAGERS, or every field when no managedFields exist)."""
    meta = (obj or {}).get("metadata") or {}
    if manager == FIELD_MANAGER and "managedFields" not in meta and obj is not None and is_managed(obj):
        return fieldset(obj)  # local mode, written before stashplan kept managed fields: all of it was stashplan's
    out: dict = {}
    for entry in _entries(obj):
        if _counts_as_own(obj, entry, manager):
            out = _union(out, entry.get("fieldsV1") or {})
    return out


def _others(obj: dict | None, manager: str) -> list[tuple[str, dict]]:
    return [(str(e.get("manager", "")), e.get("fieldsV1") or {}) for e in _entries(obj)
            if not _counts_as_own(obj, e, manager)]


def adopted(obj: dict, manager: str, now: str) -> list[dict] | None:
    """metadata.managedFields with what earlier stashplan versions wrote (LEGACY_MANAGERS) folded into `manager`'s
    Apply entry, or None when there is nothing to fold (as `kubectl apply --server-side` upgrades its own)."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    legacy = [e for e in _entries(obj) if not _is_own_apply(e, manager) and _counts_as_own(obj, e, manager)]
    if not legacy:
        return None
    kept = [e for e in entries if not any(e is old for old in legacy) and not (
        _is_own_apply(e, manager) and e.get("subresource", "") in ("", None))]
    entry = {"manager": manager, "operation": "Apply", "apiVersion": str(obj.get("apiVersion", "")), "time": now,
             "fieldsType": "FieldsV1", "fieldsV1": applied_by(obj, manager)}
    return [*kept, entry]


def removals(current: dict, wanted: dict, manager: str = FIELD_MANAGER) -> list[tuple[Path, Any]]:
    """(path, value now) of each field `manager` applied to `current` that `wanted` no longer has and no other
    manager owns: what applying `wanted` removes. Understands an API server's keyed list items (`k:{...}`)."""
    owned = applied_by(current, manager)
    out: list[tuple[Path, Any]] = []
    if owned:
        _removed(current, owned, wanted, [fs for _, fs in _others(current, manager) if isinstance(fs, dict)], (), out)
    return out


def _item_index(items: Any, keys: dict) -> int | None:
    if not isinstance(items, list):
        return None
    for i, item in enumerate(items):
        if isinstance(item, dict) and all(item.get(k) == v for k, v in keys.items()):
            return i
    return None


def _removed(cur: Any, owned: dict, want: Any, others: list[dict], path: Path, out: list[tuple[Path, Any]]) -> None:
    if cur is want or cur == want:  # (compared in C) nothing is missing from an equal value: the loop's common case
        return
    for key, sub in owned.items():
        below = [o[key] for o in others if isinstance(o.get(key), dict)] if others else others
        if key.startswith("f:"):
            name = key[2:]
            if not isinstance(cur, dict) or name not in cur:
                continue
            if isinstance(want, dict) and name in want:
                if sub:
                    _removed(cur[name], sub, want[name], below, (*path, name), out)
            elif not below:
                out.append(((*path, name), cur[name]))
        elif key.startswith("k:"):
            try:
                keys = json.loads(key[2:])
            except ValueError:
                continue
            idx = _item_index(cur, keys) if isinstance(keys, dict) else None
            if idx is None:
                continue
            widx = _item_index(want, keys)
            if widx is not None:
                _removed(cur[idx], sub, want[widx], below, (*path, idx), out)
            elif not below:
                out.append(((*path, idx), cur[idx]))


def conflicts(current: dict | None, wanted: dict, manager: str = FIELD_MANAGER) -> list[OwnedConflict]:
    """The fields `wanted` sets to another value than `current` has, where another manager owns them."""
    out: list[OwnedConflict] = []
    others = _others(current, manager)
    if current is not None and others:
        _conflicts(current, wanted, fieldset(wanted), others, (), out)
    return out


def _conflicts(cur: Any, want: dict, fs: dict, others: list[tuple[str, dict]], path: Path,
               out: list[OwnedConflict]) -> None:
    for key, sub in fs.items():
        name = key[2:]
        owners = [(m, o[key]) for m, o in others if isinstance(o, dict) and isinstance(o.get(key), dict)]
        if not owners:
            continue
        have = cur.get(name) if isinstance(cur, dict) else None
        value = want[name]
        if sub and isinstance(have, dict):
            _conflicts(have, value, sub, owners, (*path, name), out)
        elif have != value:
            out += [OwnedConflict(dotted((*path, name)), m) for m in dict.fromkeys(m for m, _ in owners)]


def _drop(obj: Any, path: Path) -> None:
    for p in path[:-1]:
        obj = obj[p]
    del obj[path[-1]]


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v)
        return out
    return over


def merged(current: dict, wanted: dict, gone: list[Path]) -> dict:
    """A new object: `current` without the fields at `gone` (paths from `removals`), `wanted` merged in (maps by
    key, lists and other values whole)."""
    base = json.loads(json.dumps(current))
    for path in sorted(gone, key=lambda p: [(0, k) if isinstance(k, str) else (1, -k) for k in p]):
        _drop(base, path)
    out: dict = _merge(base, json.loads(json.dumps(wanted)))
    return out


def applied(current: dict | None, wanted: dict, manager: str, now: str) -> dict:
    """The object after `manager` applies `wanted` to `current` (conflicts checked by the caller): the fields it
    applied before and no longer asks for removed, `wanted` merged in (maps by key, lists whole), and its entry in
    metadata.managedFields recording what it now owns. Status and server metadata are the caller's."""
    body = {k: v for k, v in wanted.items() if k != "status"}
    gone = [path for path, _ in removals(current, body, manager)] if current is not None else []
    out = merged(current or {}, body, gone)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": str(out.get("apiVersion", "")), "time": now,
             "fieldsType": "FieldsV1", "fieldsV1": fieldset(body)}
    own = [id(e) for e in _entries(current) if _counts_as_own(current, e, manager)]
    entries = [e for e in ((current or {}).get("metadata") or {}).get("managedFields") or [] if id(e) not in own]
    out.setdefault("metadata", {})["managedFields"] = [*entries, entry]
    return out


def leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """(path, value) of each non-map leaf under `value` (a removed map shows as its fields)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    else:
        yield path, value
