"""Building a Plan: the cluster's objects overlaid by the manifests (and what KubeDB and auto-backup would
generate), desired state computed from them, and each wanted object, status and deletion compared with what
exists. Orphans are listed, or deleted with --prune. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from stashplan.api.kubedb import is_kubedb
from stashplan.desired import compute as desired_mod
from stashplan.desired import generated as generated_mod
from stashplan.desired import scope as scope_mod
from stashplan.desired.pods import COMPONENT, RECEIVER_ROLE
from stashplan.desired.reads import reads_namespaces
from stashplan.desired.stored import StoredObjects
from stashplan.kinds import MANAGED_LABEL, MANAGED_VALUE, identity
from stashplan.managed_fields import dotted, leaves, removals
from stashplan.managed_fields import merged as merged_fields
from stashplan.objects import is_managed, rfc3339
from stashplan.plan.diff import covers, field_diff, keyed_conditions, mask_secret_diffs, project, shared_diffs
from stashplan.plan.model import Action, Change, FieldDiff, Orphan, Plan
from stashplan.secrets import fold_string_data, mask

# Read order matters: Jobs before sessions, so a finished Job's reported status is always seen.
READ_KINDS = ("Job", "CronJob", "Deployment", "ServiceAccount", "Role", "RoleBinding", "Secret", "AppBinding", "Repository", "Task",
              "Function", "BackupBlueprint", "BackupConfiguration", "RestoreSession", "BackupSession")
# Kinds stashplan applies from manifests: one of these it applied earlier that the manifests no longer hold is an
# orphan (listed; destroyed with --prune). BackupSessions are history (backupHistoryLimit), never orphans.
SOURCE_KINDS = ("Namespace", "BackupConfiguration", "RestoreSession", "Repository", "AppBinding", "Secret", "Task",
                "Function", "BackupBlueprint")
# Source kinds --prune never deletes: deleting a Namespace deletes everything in it. Listed as orphans, saying why.
NEVER_PRUNED = ("Namespace",)
NEVER_PRUNED_WHY = ("no longer in the manifests; never pruned: deleting a Namespace deletes everything in it "
                    "(delete it yourself, or remove its label " + MANAGED_LABEL + ")")
# Kinds the desired-state computation never reads: a plan only compares each wanted one with what exists, so a
# reader may hand them over as StoredObjects (parsed one at a time).
COMPARED_KINDS = ("CronJob",)
# Kinds stashplan derives itself and deletes only with --prune when nothing wants them any more.
DERIVED_ORPHAN_KINDS = ("ServiceAccount", "Role", "RoleBinding")


@dataclass
class Inputs:
    """What a plan is computed from: the cluster's objects, manifests from files, built-in addons."""

    actual: Mapping[str, Sequence[dict]]  # a kind's objects may be StoredObjects (parsed when read)
    manifests: Sequence[dict] = ()
    addons: Sequence[dict] = ()
    sources: Sequence[str] = ()
    prune: bool = False  # delete stashplan-applied objects that are no longer in the manifests (orphans)
    extra_warnings: list[str] = field(default_factory=list)
    secrets_read: bool = True  # False in kube mode: the operator holds no Secret permission and reads none


def reads_secrets(cluster: object) -> bool:
    """Whether plans over `cluster` read Secrets: not a Kubernetes cluster's (`reads_secrets = False`; the
    operator holds no Secret permission), also through an informer wrapping it (`.cluster`)."""
    while cluster is not None:
        if hasattr(cluster, "reads_secrets"):
            return bool(cluster.reads_secrets)
        cluster = getattr(cluster, "cluster", None)
    return True


def lists_namespaces(repositories: Iterable[dict], manifests: Sequence[dict] = (), from_files: bool = False) -> bool:
    """Whether a plan lists Namespace objects: when a Repository (stored or in the manifests) shares itself by
    namespace selector (their labels decide), or when planning from files (-f): a Namespace in the manifests is
    compared with the one that exists, and one applied earlier that they no longer hold is an orphan."""
    return from_files or bool(manifests) or reads_namespaces(repositories)


def read_kinds(cluster: object) -> tuple[str, ...]:
    """The kinds a plan over `cluster` reads: READ_KINDS, without Secret unless the cluster reads Secrets."""
    return READ_KINDS if reads_secrets(cluster) else tuple(k for k in READ_KINDS if k != "Secret")


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


Removed = dict[tuple[str, str, str], list]  # identity -> (path, value) of what applying its manifest removes


def _merge_world(inputs: Inputs) -> tuple[dict[str, Sequence[dict]], ActualIndex, Removed]:
    """Actual objects overlaid by the manifests (a manifest wins over the stored copy of itself). Kinds held as
    StoredObjects that no manifest names stay so in the world. Also what applying each manifest removes."""
    manifest_kinds = {m.get("kind") for m in inputs.manifests}
    actual = {kind: list(objs) if isinstance(objs, StoredObjects) and kind in manifest_kinds else objs
              for kind, objs in inputs.actual.items()}
    actual_index = ActualIndex(actual)
    merged_index: dict[tuple[str, str, str], dict] = {
        identity(o): o for objs in actual.values() if not isinstance(objs, StoredObjects) for o in objs}
    removed: Removed = {}
    for m in inputs.manifests:
        key = identity(m)
        current = actual_index.get(key)
        merged = m  # desired-state computation never mutates its inputs
        if current is not None:
            merged = dict(m)
            have, given = current["metadata"], merged.get("metadata", {})
            # The stored metadata itself when the manifest's adds nothing to it (a copy would be equal).
            meta = have if all(k in have and have[k] == v for k, v in given.items()) else {**have, **given}
            removed[key] = gone = removals(current, normalise_manifest(m))
            if "spec" in m:
                spec = _applied_spec(current, m, gone)
                if spec is None:  # what exists holds the manifest's spec (and fields other managers own)
                    merged["spec"] = current.get("spec")
                else:
                    merged["spec"] = spec
                    if "generation" in have:  # apply changes the spec: the server bumps generation
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
    return world, actual_index, removed


def _applied_spec(current: dict, manifest: dict, removed: list) -> dict | None:
    """The spec server-side apply of `manifest` leaves on `current` (`removed`: what it removes), or None when it
    leaves the spec as it is: what stashplan applied and the manifest dropped is gone, the manifest's set, others'
    kept."""
    gone = [path for path, _ in removed if path[0] == "spec"]
    if not gone and covers(current.get("spec"), manifest["spec"]):
        return None
    return merged_fields({"spec": current.get("spec")}, {"spec": manifest["spec"]}, gone)["spec"]


def _removal_diffs(removed: list) -> tuple[FieldDiff, ...]:
    """One `remove` diff per leaf of each field (path, value) in `removed`."""
    return tuple(FieldDiff(dotted((*path, *below)), value, None, "remove")
                 for path, gone in removed for below, value in leaves(gone))


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


def _write_change(obj: dict, current: dict | None, reason: str, warnings: list[str],
                  removed: list | None = None) -> Change | None:
    """The change that makes `current` what `obj` asks for (`removed`: what applying it removes, when known)."""
    kind, ns, name = identity(obj)
    if current is None:
        return Change(Action.CREATE, kind, ns, name, obj, reason=reason)
    removed_diffs = _removal_diffs(removals(current, obj) if removed is None else removed)
    if not removed_diffs and covers(current, obj):
        return None
    before = project(current, obj)
    diff = (*field_diff(before, obj), *removed_diffs)
    if not diff:
        return None
    if not is_managed(current):
        warnings.append(f"{kind}/{ns + '/' if ns else ''}{name} exists and is not managed by stashplan "
                        f"(label {MANAGED_LABEL}={MANAGED_VALUE}); left unchanged")
        return None
    return Change(Action.UPDATE, kind, ns, name, obj, before, mask_secret_diffs(kind, diff), reason,
                  current["metadata"].get("resourceVersion"))


def _source_orphans(inputs: Inputs, held: set[tuple[str, str, str]]) -> list[dict]:
    """What stashplan applied from manifests earlier that these manifests no longer hold (none without -f)."""
    if not (inputs.manifests or inputs.sources):
        return []
    return [o for kind in SOURCE_KINDS for o in inputs.actual.get(kind, []) if is_managed(o) and identity(o) not in held]


def _with_generated(inputs: Inputs, scope: scope_mod.Scope = scope_mod.Scope.ALL) -> tuple[
        Inputs, generated_mod.Generated, list[dict], list[dict]]:
    """Inputs whose manifests hold what KubeDB and auto-backup would create (KubeDB objects themselves are
    never applied), the generation, the orphans, and the auto-backup configurations to retire. Out of `scope`,
    auto-backup generates nothing and retires nothing (a Stash operator's auto-backup is at work there)."""
    made = generated_mod.generate(inputs.manifests, inputs.actual)
    given = [m for m in inputs.manifests if not is_kubedb(m)]
    held = {identity(m) for m in (*given, *made.objects)}
    retire = generated_mod.retired(inputs.actual, held)
    if scope is not scope_mod.Scope.ALL:
        opted = scope_mod.opted_in_namespaces(inputs.actual.get("Namespace", ()))
        made.objects = [o for o in made.objects if o.get("kind") == "AppBinding" or scope_mod.in_scope(o, opted)]
        retire = [o for o in retire if scope_mod.in_scope(o, opted)]
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
        if key[0] in NEVER_PRUNED:
            orphans.append(Orphan(*key, NEVER_PRUNED_WHY))
            continue
        why = "no longer in the manifests" if key[0] in SOURCE_KINDS else "nothing in the manifests needs it any more"
        if inputs.prune:
            changes.append(Change(Action.DELETE, *key, None, mask(obj), (), why, obj["metadata"].get("resourceVersion")))
        else:
            orphans.append(Orphan(*key, why))
    return changes, orphans


def build(inputs: Inputs, now: datetime, settings: desired_mod.Settings = desired_mod.Settings()) -> Plan:
    inputs, made, source_orphans, retire = _with_generated(inputs, settings.scope)
    world_objects, actual_index, removed = _merge_world(inputs)
    world_objects, left = scope_mod.narrow(world_objects, settings.scope)  # out of scope: no status, no Jobs
    gone = {identity(o) for o in [*retire, *(source_orphans if inputs.prune else [])] if o["kind"] not in NEVER_PRUNED}
    if gone:  # plan as if they were gone already: their CronJobs go with them
        world_objects = {k: v if isinstance(v, StoredObjects) and all(g[0] != k for g in gone)
                         else [o for o in v if identity(o) not in gone] for k, v in world_objects.items()}
    # Secrets not read at all (kube mode: the operator holds no Secret permission): their existence is not checked.
    world = desired_mod.World(world_objects, list(inputs.addons), secrets_known=inputs.secrets_read)
    want = desired_mod.compute(world, now, settings, settled=lambda obj: _settled(obj, actual_index),
                               status_settled=lambda st: _status_settled(st, world))
    warnings = [*inputs.extra_warnings, *want.warnings]
    changes: list[Change] = []

    # Namespaces first: what the manifests put in a new Namespace is created after it.
    namespaces = [m for m in inputs.manifests if m.get("kind") == "Namespace"]
    for m in [*namespaces, *(m for m in inputs.manifests if m.get("kind") != "Namespace")] if namespaces else inputs.manifests:
        key = identity(m)
        current = actual_index.get(key)
        dropped = removed.get(key)
        if current is not None and key[0] != "Secret" and not dropped and _manifest_unchanged(m, current):
            continue
        change = _write_change(normalise_manifest(m), current, made.reasons.get(key, "in the manifests"), warnings,
                               dropped)
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
        have = (current or {}).get("status") or {}
        status = forward_only(st.status, have)
        if covers(have, status):
            continue
        before = project(have, status)
        diff = shared_diffs(field_diff(keyed_conditions(before), keyed_conditions(status)), shared)
        if diff:
            rv = (actual_index.get(key) or {}).get("metadata", {}).get("resourceVersion")
            changes.append(Change(Action.STATUS, *key, status, before, diff, st.reason, rv))

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
    for key, obj in _except_keys(inputs.actual.get("Deployment", []), wanted_keys | deleted):
        if is_managed(obj) and (obj["metadata"].get("labels") or {}).get(COMPONENT) == RECEIVER_ROLE:
            changes.append(Change(Action.DELETE, *key, None, obj, (), "its BackupConfiguration is gone, invalid, or "
                                  "no longer asks for walArchive receive", obj["metadata"].get("resourceVersion")))
    pruned, orphans = _orphan_changes(inputs, source_orphans, wanted_keys, deleted)
    changes += pruned
    notes = [*made.notes, *want.notes, *filter(None, [scope_mod.left_note(left)])]
    return Plan(tuple(changes), tuple(dict.fromkeys(notes)), tuple(warnings), rfc3339(now),
                tuple(inputs.sources), tuple(orphans), tuple(dict.fromkeys([*made.refusals, *want.refusals])))


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
    return obj["kind"] == "Job" or (covers(current, obj) and not removals(current, obj))


def _status_settled(st: desired_mod.StatusChange, world: desired_mod.World) -> bool:
    """The object already has every status key as wanted (observedGeneration never goes backwards)."""
    have = (world.get(st.kind, st.namespace, st.name) or {}).get("status") or {}
    return covers(have, forward_only(st.status, have))


def forward_only(status: dict, have: dict) -> dict:
    """`status` whose observedGeneration is never below the one `have` records (a status seen for a newer spec
    is never planned backwards)."""
    want, seen = status.get("observedGeneration"), have.get("observedGeneration")
    if isinstance(want, int) and isinstance(seen, int) and want < seen:
        return {**status, "observedGeneration": seen}
    return status


def _reason_for(obj: dict) -> str:
    if obj["kind"] == "BackupSession":
        return f"retry ({obj['spec'].get('retryLeft', 0)} more left after this one)"
    if obj["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
        return "identity of backup and restore pods in this namespace"
    if obj["kind"] == "CronJob":
        return "triggers BackupConfiguration " + obj["metadata"]["ownerReferences"][0]["name"]
    if obj["kind"] == "Deployment":
        return ("streams WAL into the Repository of BackupConfiguration "
                + obj["metadata"]["ownerReferences"][0]["name"] + " (Task param walArchive receive)")
    owner = obj["metadata"]["ownerReferences"][0]
    return f"runs {owner['kind']} {owner['name']}"


# -- serialisation (saved plans and --json) --------------------------------------------------------
