"""The incremental scope is derived from what desired state reads (stashplan.desired.reads): after random edits
of a world planned and applied once, a plan of the units' subsets equals the full plan, and a plan of one unit's
subset holds exactly the full plan's changes of that unit."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stashplan.api import builtin_addons
from stashplan.desired.reads import Key, Unit, unit_of
from stashplan.kinds import identity, kind_info
from stashplan.operator.incremental import subset
from stashplan.plan.build import READ_KINDS, Inputs, build
from stashplan.plan.model import Action, Plan

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ADDONS = builtin_addons()
EXAMPLES = int(os.environ.get("STASHPLAN_FUZZ_EXAMPLES", "670")) // 3
CONFIGS = [f"cfg-{i}" for i in range(4)]
World = dict[Key, dict]


class Index:
    """A plain in-memory Source, as the informer serves one."""

    def __init__(self, world: World) -> None:
        self.world = world

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        return self.world.get((kind, namespace if kind_info(kind).namespaced else "", name))

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        return [o for (k, ns, _), o in self.world.items() if k == kind and (namespace is None or ns == namespace)]

    def in_namespace(self, kind: str, namespace: str) -> list[dict]:
        return self.list(kind, namespace)


def _store(world: World, obj: dict, n: list[int]) -> None:
    n[0] += 1
    meta = obj.setdefault("metadata", {})
    meta.setdefault("uid", f"uid-{identity(obj)}")
    meta["resourceVersion"] = str(n[0])
    meta.setdefault("creationTimestamp", "2026-12-06T02:00:00Z")
    meta.setdefault("generation", 1)
    world[identity(obj)] = obj


def apply(world: World, plan: Plan, n: list[int]) -> None:
    """What apply would leave behind, in memory."""
    for c in plan.changes:
        key = (c.kind, c.namespace, c.name)
        if c.action in (Action.CREATE, Action.UPDATE):
            obj = copy.deepcopy(c.after or {})
            if key in world and "status" in world[key]:
                obj["status"] = world[key]["status"]
            _store(world, obj, n)
        elif c.action is Action.STATUS and key in world:
            world[key]["status"] = {**(world[key].get("status") or {}), **copy.deepcopy(c.after or {})}
        elif c.action is Action.DELETE:
            world.pop(key, None)


def base_world() -> tuple[World, list[int]]:
    docs = [d for p in sorted((ROOT / "specs" / "examples" / "local-sqlite").glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]
    n = [0]
    world: World = {}
    for name in ("demo", "apps"):
        _store(world, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"team": name}}}, n)
    config = next(d for d in docs if d["kind"] == "BackupConfiguration")
    for d in docs:
        if d["kind"] != "BackupConfiguration":
            _store(world, copy.deepcopy(d), n)
    app = copy.deepcopy(next(d for d in docs if d["kind"] == "AppBinding"))
    app["metadata"]["namespace"] = "apps"
    _store(world, app, n)
    for name in CONFIGS:
        c = copy.deepcopy(config)
        c["metadata"]["name"] = name
        _store(world, c, n)
    restore = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession",
               "metadata": {"name": "restore-1", "namespace": "demo"},
               "spec": {"task": {"name": "sqlite-restore-3"}, "repository": {"name": "local-repo"},
                        "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                           "name": "app-db"}}, "rules": [{"snapshots": ["latest"]}]}}
    _store(world, restore, n)
    for _ in range(3):  # plan and apply until settled
        plan = full_plan(world)
        if plan.empty:
            break
        apply(world, plan, n)
    return world, n


def full_plan(world: World) -> Plan:
    actual: dict[str, list[dict]] = {kind: [] for kind in READ_KINDS}
    for (kind, _, _), obj in world.items():
        actual.setdefault(kind, []).append(obj)
    return build(Inputs(actual=actual, addons=ADDONS), NOW)


def members(world: World) -> dict[Unit, set[Key]]:
    out: dict[Unit, set[Key]] = {}
    for key, obj in world.items():
        if key[0] in ("CronJob", "BackupSession", "Job") and (unit := unit_of(key, obj)) is not None:
            out.setdefault(unit, set()).add(key)
    return out


def units(world: World) -> set[Unit]:
    found = {k for k in world if k[0] in ("BackupConfiguration", "RestoreSession")}
    return found | set(members(world))


def scoped_plan(world: World, scope: set[Unit]) -> Plan:
    return build(Inputs(actual=subset(scope, Index(world), members(world)), addons=ADDONS), NOW)


def changes(plan: Plan) -> set[str]:
    return {json.dumps([c.address, c.action.value, c.after], sort_keys=True, default=str) for c in plan.changes}


# -- random edits --------------------------------------------------------------------------------
Edit = Callable[[World, list[int]], None]


def _edit_config(name: str, path: Sequence[str], value: object) -> Edit:
    def run(world: World, n: list[int]) -> None:
        obj = world.get(("BackupConfiguration", "demo", name))
        if obj is None:
            return
        obj = copy.deepcopy(obj)
        parent = obj["spec"]
        for part in path[:-1]:
            parent = parent.setdefault(part, {})
        if value is None:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
        _store(world, obj, n)
    return run


def _delete(kind: str, ns: str, name: str) -> Edit:
    return lambda world, n: world.pop((kind, ns, name), None) and None


def _session(config: str, phase: str | None, retry_left: int, minutes_ago: int) -> Edit:
    def run(world: World, n: list[int]) -> None:
        n[0] += 1
        obj: dict = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupSession",
                     "metadata": {"name": f"{config}-{n[0]}", "namespace": "demo",
                                  "labels": {"app.kubernetes.io/managed-by": "stashplan"},
                                  "creationTimestamp": (NOW - timedelta(minutes=minutes_ago)).strftime(
                                      "%Y-%m-%dT%H:%M:%SZ")},
                     "spec": {"invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration",
                                          "name": config}, "retryLeft": retry_left}}
        if phase:
            obj["status"] = {"phase": phase}
        _store(world, obj, n)
    return run


def _repository_policy(policy: dict | None) -> Edit:
    def run(world: World, n: list[int]) -> None:
        repo = copy.deepcopy(world.get(("Repository", "demo", "local-repo")))
        if repo is None:
            return
        repo["spec"].pop("usagePolicy", None)
        if policy:
            repo["spec"]["usagePolicy"] = {"allowedNamespaces": policy}
        _store(world, repo, n)
    return run


def _status_phase(kind: str, name: str, phase: str) -> Edit:
    def run(world: World, n: list[int]) -> None:
        obj = world.get((kind, "demo", name))
        if obj is not None:
            obj["status"] = {**(obj.get("status") or {}), "phase": phase}
    return run


configs = st.sampled_from(CONFIGS)
edits: st.SearchStrategy[Edit] = st.one_of(
    st.builds(_edit_config, configs, st.just(["schedule"]), st.sampled_from(["0 3 * * *", "*/5 * * * *", ""])),
    st.builds(_edit_config, configs, st.just(["paused"]), st.booleans()),
    st.builds(_edit_config, configs, st.just(["repository", "name"]), st.sampled_from(["local-repo", "missing"])),
    st.builds(_edit_config, configs, st.just(["target", "ref", "name"]), st.sampled_from(["app-db", "gone"])),
    st.builds(_edit_config, configs, st.just(["target", "ref", "namespace"]), st.sampled_from(["apps", None])),
    st.builds(_edit_config, configs, st.just(["task", "name"]), st.sampled_from(["sqlite-backup-3", "nope"])),
    st.builds(_edit_config, configs, st.just(["backupHistoryLimit"]), st.sampled_from([1, 2, None])),
    st.builds(_delete, st.sampled_from(["BackupConfiguration"]), st.just("demo"), configs),
    st.builds(_delete, st.sampled_from(["Secret"]), st.just("demo"), st.just("local-repo-secret")),
    st.builds(_delete, st.sampled_from(["AppBinding"]), st.sampled_from(["demo", "apps"]), st.just("app-db")),
    st.builds(_delete, st.just("CronJob"), st.just("demo"), st.sampled_from([f"stash-trigger-{c}" for c in CONFIGS])),
    st.builds(_session, configs, st.sampled_from([None, "Pending", "Running", "Succeeded", "Failed", "Skipped"]),
              st.integers(0, 2), st.sampled_from([1, 30])),
    st.builds(_repository_policy, st.sampled_from([None, {"from": "Same"}, {"from": "All"},
                                                   {"from": "Selector", "selector": {"matchLabels": {"team": "demo"}}},
                                                   {"from": "Selector", "selector": {"matchLabels": {"team": "x"}}}])),
    st.builds(_status_phase, st.just("RestoreSession"), st.just("restore-1"),
              st.sampled_from(["Running", "Failed", "Pending"])),
)

BASE, COUNTER = base_world()


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edits, min_size=1, max_size=6), st.integers(0, 1000))
def test_after_random_edits_the_incremental_plan_equals_the_full_plan(steps: list[Edit], pick: int) -> None:
    world, n = copy.deepcopy(BASE), [COUNTER[0]]
    for edit in steps:
        edit(world, n)
    full = full_plan(world)
    everything = units(world)
    assert changes(scoped_plan(world, everything)) == changes(full)
    unit = sorted(everything)[pick % len(everything)]
    one = scoped_plan(world, {unit})
    ours = [c for c in full.changes
            if unit_of((c.kind, c.namespace, c.name), c.after if c.action is not Action.STATUS else
                       world.get((c.kind, c.namespace, c.name))) == unit]
    assert changes(Plan(tuple(ours))) <= changes(one) <= changes(full)


def test_the_base_world_is_settled_and_an_edit_changes_its_plan() -> None:
    assert full_plan(copy.deepcopy(BASE)).empty
    world, n = copy.deepcopy(BASE), [COUNTER[0]]
    _edit_config("cfg-1", ["schedule"], "0 4 * * *")(world, n)
    assert any(c.address == "CronJob/demo/stash-trigger-cfg-1" for c in full_plan(world).changes)
