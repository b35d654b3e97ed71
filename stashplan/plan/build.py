"""The Plan: desired vs actual, compared with deepdiff on the fields stashplan manages. Pure.

A Plan is plain data. `changes` hold everything apply will do, in order; `notes` and `warnings`
exist only for display and have no authority over apply. Secrets are masked in every diff; a
saved plan never holds a secret value, only a digest that apply checks against the manifest.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from stashplan.api.kubedb import is_kubedb
from stashplan.desired import compute as desired_mod
from stashplan.desired import generated as generated_mod
from stashplan.desired.stored import StoredObjects
from stashplan.kinds import MANAGED_LABEL, MANAGED_VALUE, identity
from stashplan.objects import is_managed, rfc3339
from stashplan.secrets import MASK, fold_string_data, mask

PLAN_FORMAT = 1
# Read order matters: Jobs before sessions, so a finished Job's reported status is always seen.
READ_KINDS = ("Job", "CronJob", "ServiceAccount", "RoleBinding", "Secret", "AppBinding", "Repository", "Task",
              "Function", "BackupBlueprint", "BackupConfiguration", "RestoreSession", "BackupSession")
# Kinds stashplan applies from manifests: one of these it applied earlier that the manifests no longer hold is an
# orphan (listed; destroyed with --prune). BackupSessions are history (backupHistoryLimit), never orphans.
SOURCE_KINDS = ("BackupConfiguration", "RestoreSession", "Repository", "AppBinding", "Secret", "Task", "Function",
                "BackupBlueprint")
# Kinds the desired-state computation never reads: a plan only compares each wanted one with what exists, so a
# reader may hand them over as StoredObjects (parsed one at a time).
COMPARED_KINDS = ("CronJob",)
# Kinds stashplan derives itself and deletes only with --prune when nothing wants them any more.
DERIVED_ORPHAN_KINDS = ("ServiceAccount", "RoleBinding")


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    STATUS = "status"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "status": "~"}[self.value]


@dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str  # dotted path, list indexes in brackets: spec.schedule, spec.steps[0].name
    before: Any  # None when added
    after: Any  # None when removed
    op: str  # "add" | "remove" | "change"


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: str
    namespace: str
    name: str
    after: dict | None  # the full object to write (create/update/replace) or the status keys to set
    before: dict | None = None  # the managed projection of what exists (display + staleness only)
    diff: tuple[FieldDiff, ...] = ()
    reason: str = ""  # why, for users only
    resource_version: str | None = None  # of the object read; None when it did not exist

    @property
    def address(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@dataclass(frozen=True)
class Orphan:
    """An object stashplan applied earlier that the manifests no longer hold; `plan --prune` destroys it."""

    kind: str
    namespace: str
    name: str
    reason: str

    @property
    def address(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    created: str = ""
    sources: tuple[str, ...] = ()
    orphans: tuple[Orphan, ...] = ()  # listed only, never acted on (with --prune they are DELETE changes instead)
    refusals: tuple[str, ...] = ()  # what the manifests ask for that stashplan cannot run: plan exits 1

    def counts(self) -> dict[str, int]:
        out = {"add": 0, "change": 0, "destroy": 0, "status": 0}
        for c in self.changes:
            if c.action is Action.CREATE:
                out["add"] += 1
            elif c.action is Action.UPDATE:
                out["change"] += 1
            elif c.action is Action.DELETE:
                out["destroy"] += 1
            elif c.action is Action.REPLACE:
                out["add"] += 1
                out["destroy"] += 1
            else:
                out["status"] += 1
        return out

    @property
    def empty(self) -> bool:
        """Nothing for apply to do."""
        return not self.changes

    @property
    def settled(self) -> bool:
        """Nothing to do and nothing orphaned: what `--detailed-exitcode` exits 0 for."""
        return not self.changes and not self.orphans


@dataclass
class Inputs:
    """What a plan is computed from: the cluster's objects, manifests from files, built-in addons."""

    actual: Mapping[str, Sequence[dict]]  # a kind's objects may be StoredObjects (parsed when read)
    manifests: Sequence[dict] = ()
    addons: Sequence[dict] = ()
    sources: Sequence[str] = ()
    prune: bool = False  # delete stashplan-applied objects that are no longer in the manifests (orphans)
    extra_warnings: list[str] = field(default_factory=list)


# -- projection and diff -------------------------------------------------------------------------
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


def _keyed_conditions(status: Any) -> Any:
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


def _mask_diffs(kind: str, diffs: tuple[FieldDiff, ...]) -> tuple[FieldDiff, ...]:
    if kind != "Secret":
        return diffs
    return tuple(
        FieldDiff(d.path, None if d.before is None else MASK, None if d.after is None else MASK, d.op)
        if d.path.startswith(("data", "stringData")) else d
        for d in diffs
    )


def secret_digest(secret: dict) -> str:
    """A digest of a Secret's data, recorded in saved plans instead of the values."""
    return hashlib.sha256(json.dumps(secret.get("data") or {}, sort_keys=True).encode()).hexdigest()


# -- building the plan --------------------------------------------------------------------------
# The labels of every manifest that has none of its own: one dict for all (never changed, like the rest of a plan).
_MANAGED_ONLY = {MANAGED_LABEL: MANAGED_VALUE}


def normalise_manifest(obj: dict) -> dict:
    """A manifest as stashplan applies it: managed label added, Secret stringData folded into data. Its fields
    are shared with `obj`, not copied (neither is ever changed; apply and the clusters copy what they send)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = out.setdefault("metadata", {})
    meta = {k: v for k, v in meta.items()
            if k in ("name", "namespace", "labels", "annotations", "generateName", "ownerReferences")}
    labels = meta.get("labels")
    meta["labels"] = {**labels, MANAGED_LABEL: MANAGED_VALUE} if labels else _MANAGED_ONLY
    out["metadata"] = meta
    return fold_string_data(out) if out.get("kind") == "Secret" else out


class ActualIndex:
    """What exists, by identity; objects of StoredObjects kinds are parsed when looked up (a fresh dict each time)."""

    def __init__(self, actual: Mapping[str, Sequence[dict]]) -> None:
        self._stored = {kind: objs for kind, objs in actual.items() if isinstance(objs, StoredObjects)}
        self._plain = {identity(o): o for objs in actual.values() if not isinstance(objs, StoredObjects) for o in objs}

    def get(self, key: tuple[str, str, str]) -> dict | None:
        found = self._plain.get(key)
        if found is None and (stored := self._stored.get(key[0])) is not None:
            return stored.get(key)
        return found


def _merge_world(inputs: Inputs) -> tuple[dict[str, Sequence[dict]], ActualIndex]:
    """Actual objects overlaid by the manifests (a manifest wins over the stored copy of itself). Kinds held as
    StoredObjects that no manifest names stay so in the world."""
    manifest_kinds = {m.get("kind") for m in inputs.manifests}
    actual = {kind: list(objs) if isinstance(objs, StoredObjects) and kind in manifest_kinds else objs
              for kind, objs in inputs.actual.items()}
    actual_index = ActualIndex(actual)
    merged_index: dict[tuple[str, str, str], dict] = {
        identity(o): o for objs in actual.values() if not isinstance(objs, StoredObjects) for o in objs}
    for m in inputs.manifests:
        key = identity(m)
        current = actual_index.get(key)
        merged = m  # desired-state computation never mutates its inputs
        if current is not None:
            merged = dict(m)
            have, given = current["metadata"], merged.get("metadata", {})
            # The stored metadata itself when the manifest's adds nothing to it (a copy would be equal).
            meta = have if all(k in have and have[k] == v for k, v in given.items()) else {**have, **given}
            if merged.get("spec") != current.get("spec") and "generation" in have:
                # apply will change the spec: the server bumps generation, so observedGeneration follows.
                meta = {**meta, "generation": int(have["generation"]) + 1}
            merged["metadata"] = meta
            if "status" in current:
                merged["status"] = current["status"]
        merged_index[key] = merged
    world: dict[str, Sequence[dict]] = {kind: objs if isinstance(objs, StoredObjects) else [] for kind, objs in actual.items()}
    for key, obj in merged_index.items():
        objs = world.setdefault(key[0], [])
        assert isinstance(objs, list)
        objs.append(obj)
    return world, actual_index


def _manifest_unchanged(manifest: dict, current: dict) -> bool:
    """What normalise_manifest + _write_change would find, without copying: every field of the manifest is
    already on the stored object and the managed label is there."""
    meta = manifest.get("metadata") or {}
    have = current.get("metadata") or {}
    if ((have.get("labels") or {}).get(MANAGED_LABEL)) != MANAGED_VALUE:
        return False
    for k, v in manifest.items():
        if k == "status":
            continue
        if k == "metadata":
            for mk in ("name", "namespace", "labels", "annotations", "generateName", "ownerReferences"):
                if mk in meta and not (mk in have and covers(have[mk], meta[mk])):
                    return False
        elif k not in current or not covers(current[k], v):
            return False
    return True


def _write_change(obj: dict, current: dict | None, reason: str, warnings: list[str]) -> Change | None:
    kind, ns, name = identity(obj)
    if current is None:
        return Change(Action.CREATE, kind, ns, name, obj, reason=reason)
    if covers(current, obj):
        return None
    before = project(current, obj)
    diff = field_diff(before, obj)
    if not diff:
        return None
    if not is_managed(current):
        warnings.append(f"{kind}/{ns + '/' if ns else ''}{name} exists and is not managed by stashplan "
                        f"(label {MANAGED_LABEL}={MANAGED_VALUE}); left unchanged")
        return None
    return Change(Action.UPDATE, kind, ns, name, obj, before, _mask_diffs(kind, diff), reason,
                  current["metadata"].get("resourceVersion"))


def _source_orphans(inputs: Inputs, held: set[tuple[str, str, str]]) -> list[dict]:
    """What stashplan applied from manifests earlier that these manifests no longer hold (none without -f)."""
    if not (inputs.manifests or inputs.sources):
        return []
    return [o for kind in SOURCE_KINDS for o in inputs.actual.get(kind, []) if is_managed(o) and identity(o) not in held]


def _with_generated(inputs: Inputs) -> tuple[Inputs, generated_mod.Generated, list[dict], list[dict]]:
    """Inputs whose manifests hold what KubeDB and auto-backup would create (KubeDB objects themselves are
    never applied), the generation, the orphans, and the auto-backup configurations to retire."""
    made = generated_mod.generate(inputs.manifests, inputs.actual)
    given = [m for m in inputs.manifests if not is_kubedb(m)]
    held = {identity(m) for m in (*given, *made.objects)}
    retire = generated_mod.retired(inputs.actual, held)
    orphans = [o for o in _source_orphans(inputs, held) if o not in retire]
    return replace(inputs, manifests=[*given, *made.objects]), made, orphans, retire


def _orphan_changes(inputs: Inputs, source: list[dict], wanted: set, deleted: set) -> tuple[list[Change], list[Orphan]]:
    """Orphans as DELETE changes (--prune) or as a list; derived identities nothing wants any more join them."""
    derived = [o for kind in DERIVED_ORPHAN_KINDS for o in inputs.actual.get(kind, [])
               if is_managed(o) and identity(o) not in wanted] if source or inputs.manifests or inputs.sources else []
    changes: list[Change] = []
    orphans: list[Orphan] = []
    for obj in [*source, *derived]:
        key = identity(obj)
        if key in deleted:
            continue
        why = "no longer in the manifests" if key[0] in SOURCE_KINDS else "nothing in the manifests needs it any more"
        if inputs.prune:
            changes.append(Change(Action.DELETE, *key, None, mask(obj), (), why, obj["metadata"].get("resourceVersion")))
        else:
            orphans.append(Orphan(*key, why))
    return changes, orphans


def build(inputs: Inputs, now: datetime, settings: desired_mod.Settings = desired_mod.Settings()) -> Plan:
    inputs, made, source_orphans, retire = _with_generated(inputs)
    world_objects, actual_index = _merge_world(inputs)
    gone = {identity(o) for o in [*retire, *(source_orphans if inputs.prune else [])]}
    if gone:  # plan as if they were gone already: their CronJobs go with them
        world_objects = {k: v if isinstance(v, StoredObjects) and all(g[0] != k for g in gone)
                         else [o for o in v if identity(o) not in gone] for k, v in world_objects.items()}
    world = desired_mod.World(world_objects, list(inputs.addons))
    want = desired_mod.compute(world, now, settings, settled=lambda obj: _settled(obj, actual_index),
                               status_settled=lambda st: _status_settled(st, world))
    warnings = [*inputs.extra_warnings, *want.warnings]
    changes: list[Change] = []

    for m in inputs.manifests:
        key = identity(m)
        current = actual_index.get(key)
        if current is not None and key[0] != "Secret" and _manifest_unchanged(m, current):
            continue
        obj = normalise_manifest(m)
        change = _write_change(obj, current, made.reasons.get(key, "in the manifests"), warnings)
        if change:
            changes.append(change)
    for obj in retire:
        changes.append(Change(Action.DELETE, *identity(obj), None, mask(obj), (), "auto-backup: no AppBinding names "
                              "its BackupBlueprint any more (the Repository is kept for restores)",
                              obj["metadata"].get("resourceVersion")))

    wanted_keys = want.identities
    for obj in want.objects:
        key = identity(obj)
        current = actual_index.get(key)
        if key[0] == "Job" and current is not None:
            continue  # a Job's template is immutable and a running Job is never restarted by a plan
        change = _write_change(obj, current, _reason_for(obj), warnings)
        if change:
            changes.append(change)

    shared: dict[tuple, FieldDiff] = {}
    for st in want.statuses:
        key = (st.kind, st.namespace, st.name)
        current = world.get(*key)
        if _status_settled(st, world):
            continue
        before = project((current or {}).get("status") or {}, st.status)
        diff = _shared_diffs(field_diff(_keyed_conditions(before), _keyed_conditions(st.status)), shared)
        if diff:
            rv = (actual_index.get(key) or {}).get("metadata", {}).get("resourceVersion")
            changes.append(Change(Action.STATUS, *key, st.status, before, diff, st.reason, rv))

    for d in want.deletions:
        current = actual_index.get((d.kind, d.namespace, d.name))
        if current is not None and is_managed(current):
            changes.append(Change(Action.DELETE, d.kind, d.namespace, d.name, None, mask(current), (),
                                  d.reason, current["metadata"].get("resourceVersion")))
    deleted = {(d.kind, d.namespace, d.name) for d in want.deletions}
    for key, obj in _except_keys(inputs.actual.get("CronJob", []), wanted_keys | deleted):
        if is_managed(obj):  # Jobs go with their sessions (ownerReference GC)
            changes.append(Change(Action.DELETE, *key, None, obj, (), "its BackupConfiguration is gone or invalid",
                                  obj["metadata"].get("resourceVersion")))
    pruned, orphans = _orphan_changes(inputs, source_orphans, wanted_keys, deleted)
    changes += pruned
    return Plan(tuple(changes), tuple(dict.fromkeys([*made.notes, *want.notes])), tuple(warnings), rfc3339(now),
                tuple(inputs.sources), tuple(orphans), tuple(dict.fromkeys([*made.refusals, *want.refusals])))


def _shared_diffs(diffs: tuple[FieldDiff, ...], shared: dict[tuple, FieldDiff]) -> tuple[FieldDiff, ...]:
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


def _except_keys(objs: Sequence[dict], skip: set[tuple[str, str, str]]) -> Iterable[tuple[tuple[str, str, str], dict]]:
    """(identity, object) of `objs` whose identity is not in `skip`, in order (StoredObjects parse only those)."""
    if isinstance(objs, StoredObjects):
        return objs.except_keys(skip)
    return ((key, o) for o in objs if (key := identity(o)) not in skip)


def _settled(obj: dict, actual_index: ActualIndex) -> bool:
    """A desired object the plan would not touch: it exists and covers what is wanted (a Job that exists is never
    changed by a plan). Such objects are not kept while the rest is computed."""
    current = actual_index.get(identity(obj))
    if current is None:
        return False
    return obj["kind"] == "Job" or covers(current, obj)


def _status_settled(st: desired_mod.StatusChange, world: desired_mod.World) -> bool:
    """The object already has every status key as wanted."""
    return covers((world.get(st.kind, st.namespace, st.name) or {}).get("status") or {}, st.status)


def _reason_for(obj: dict) -> str:
    if obj["kind"] == "BackupSession":
        return f"retry ({obj['spec'].get('retryLeft', 0)} more left after this one)"
    if obj["kind"] in ("ServiceAccount", "RoleBinding"):
        return "identity of backup and restore pods in this namespace"
    if obj["kind"] == "CronJob":
        return "triggers BackupConfiguration " + obj["metadata"]["ownerReferences"][0]["name"]
    owner = obj["metadata"]["ownerReferences"][0]
    return f"runs {owner['kind']} {owner['name']}"


# -- serialisation (saved plans and --json) --------------------------------------------------------
def to_json(plan: Plan, *, for_file: bool = False) -> dict:
    """The documented JSON shape of a plan (see docs/plan-json.md). Secret values never appear."""

    def change(c: Change) -> dict:
        after = mask(c.after) if c.kind == "Secret" and c.action is not Action.STATUS else c.after
        out: dict = {
            "address": c.address, "action": c.action.value, "symbol": c.action.symbol,
            "kind": c.kind, "namespace": c.namespace, "name": c.name, "reason": c.reason,
            "before": c.before if c.kind != "Secret" else mask(c.before), "after": after,
            "diff": [{"path": d.path, "op": d.op, "before": d.before, "after": d.after} for d in c.diff],
            "resource_version": c.resource_version,
        }
        if for_file and c.kind == "Secret" and c.after is not None:
            out["secret_digest"] = secret_digest(c.after)
        return out

    return {
        "format_version": PLAN_FORMAT,
        "created": plan.created,
        "sources": list(plan.sources),
        "summary": plan.counts(),
        "changes": [change(c) for c in plan.changes],
        "notes": list(plan.notes),
        "warnings": list(plan.warnings),
        "orphans": [{"address": o.address, "kind": o.kind, "namespace": o.namespace, "name": o.name,
                     "reason": o.reason} for o in plan.orphans],
        "refusals": list(plan.refusals),
    }


def from_json(data: dict) -> tuple[Plan, dict[str, str]]:
    """A Plan read back from a saved file, and the Secret digests it recorded (address -> digest)."""
    if data.get("format_version") != PLAN_FORMAT:
        raise ValueError(f"unsupported plan format {data.get('format_version')!r}; expected {PLAN_FORMAT}")
    changes = []
    digests = {}
    for c in data["changes"]:
        diff = tuple(FieldDiff(d["path"], d["before"], d["after"], d["op"]) for d in c["diff"])
        changes.append(Change(Action(c["action"]), c["kind"], c["namespace"], c["name"], c["after"], c["before"],
                              diff, c["reason"], c["resource_version"]))
        if "secret_digest" in c:
            digests[changes[-1].address] = c["secret_digest"]
    orphans = tuple(Orphan(o["kind"], o["namespace"], o["name"], o.get("reason", "")) for o in data.get("orphans", ()))
    return Plan(tuple(changes), tuple(data.get("notes", ())), tuple(data.get("warnings", ())),
                data.get("created", ""), tuple(data.get("sources", ())), orphans,
                tuple(data.get("refusals", ()))), digests
