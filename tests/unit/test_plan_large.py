"""Large plans: the no-change fast path misses no change, and plans over a few hundred changes print a summary."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import pytest
from rich.console import Console

from stashplan.desired.stored import StoredObjects
from stashplan.kinds import MANAGED_LABEL, identity
from stashplan.plan import build as plan_mod
from stashplan.plan.model import Action, Plan
from stashplan.plan.render import SUMMARY_OVER, render_json, render_plan
from tests.unit.test_plan_diff import build, converged, manifests, stored


def _edit(kind: str, path: tuple[str, ...], value: object) -> list[dict]:
    ms = manifests()
    [obj] = [m for m in ms if m["kind"] == kind]
    for key in path[:-1]:
        obj = obj.setdefault(key, {})
    obj[path[-1]] = value
    return ms


def test_converged_cluster_plans_no_change() -> None:
    assert build(converged()).empty


@pytest.mark.parametrize(("kind", "path", "value"), [
    ("BackupConfiguration", ("spec", "schedule"), "5 4 * * *"),
    ("BackupConfiguration", ("metadata", "labels"), {"team": "db"}),
    ("BackupConfiguration", ("metadata", "annotations"), {"note": "x"}),
    ("AppBinding", ("spec", "clientConfig", "url"), "sqlite:////tmp/other.sqlite"),
    ("Repository", ("spec", "backend", "local", "mountPath"), "/tmp/elsewhere"),
    ("BackupConfiguration", ("spec", "retentionPolicy", "keepLast"), 4),
])
def test_every_edit_of_a_manifest_is_planned(kind: str, path: tuple[str, ...], value: object) -> None:
    p = build(converged(), _edit(kind, path, value))
    assert f"{kind}/demo/" in " ".join(c.address for c in p.changes if c.action is Action.UPDATE)


def test_object_that_lost_the_managed_label_is_relabelled() -> None:
    actual = converged()
    del actual["AppBinding"][0]["metadata"]["labels"][MANAGED_LABEL]
    p = build(actual)
    assert [c.address for c in p.changes] == []  # not managed: left unchanged, with a warning
    assert any("AppBinding/demo/db exists and is not managed" in w for w in p.warnings)


def test_cronjob_edited_in_the_cluster_is_set_back() -> None:
    actual = converged()
    actual["CronJob"][0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil"
    p = build(actual)
    assert [c.address for c in p.changes] == ["CronJob/demo/stash-trigger-nightly"]


def _many(n: int) -> Plan:
    ms = manifests()
    for i in range(n):
        extra = _edit("BackupConfiguration", ("metadata", "name"), f"nightly-{i:03d}")[3]
        ms.append(extra)
    return build({}, ms)


def test_large_plan_prints_one_line_per_kind_and_namespace_and_full_prints_each() -> None:
    p = _many(SUMMARY_OVER // 2)
    assert len(p.changes) > SUMMARY_OVER
    out = io.StringIO()
    render_plan(p, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "summarised by kind and namespace" in text
    assert f"+    {SUMMARY_OVER // 2 + 1} CronJob in demo will be created: stash-trigger-nightly," in text
    assert "stash-trigger-nightly-050" not in text  # names beyond the first few are counted, not listed
    assert f"{SUMMARY_OVER // 2 + 1} BackupConfigurations (e.g. demo/nightly" in text  # repeated notes grouped
    assert text.rstrip().endswith(f"Plan: {len(p.changes) - p.counts()['status']} to add, 0 to change, "
                                  f"0 to destroy. {p.counts()['status']} status updates.")
    full = io.StringIO()
    render_plan(p, Console(file=full, width=200, color_system=None), full=True)
    assert "+ CronJob/demo/stash-trigger-nightly-050 will be created" in full.getvalue()
    assert len(json.loads(render_json(p))["changes"]) == len(p.changes)  # JSON is always complete


def test_small_plan_prints_every_change() -> None:
    out = io.StringIO()
    render_plan(build({}), Console(file=out, width=200, color_system=None))
    assert "+ CronJob/demo/stash-trigger-nightly will be created" in out.getvalue()
    assert "summarised" not in out.getvalue()


def _as_stored(actual: dict[str, list[dict]]) -> dict[str, Sequence[dict]]:
    """`actual` with its CronJobs as local mode hands them to the planner: JSON text, parsed when compared."""
    out: dict[str, Sequence[dict]] = dict(actual)
    out["CronJob"] = StoredObjects((identity(o), json.dumps(o)) for o in actual.get("CronJob", []))
    return out


@pytest.mark.parametrize("case", ["converged", "cronjob edited", "configuration gone", "schedule changed"])
@pytest.mark.parametrize("prune", [False, True])
def test_cronjobs_kept_as_stored_text_plan_exactly_as_parsed_ones(case: str, prune: bool) -> None:
    actual = converged()
    ms = manifests()
    if case == "cronjob edited":
        actual["CronJob"][0]["spec"]["suspend"] = True
    elif case == "configuration gone":
        ms = [m for m in ms if m["kind"] != "BackupConfiguration"]
    elif case == "schedule changed":
        ms = _edit("BackupConfiguration", ("spec", "schedule"), "5 4 * * *")
    parsed = build(json.loads(json.dumps(actual)), ms, prune=prune)
    assert build(_as_stored(actual), ms, prune=prune) == parsed  # type: ignore[arg-type]
    assert case == "converged" or parsed.changes or parsed.orphans


def _converged_pair() -> tuple[list[dict], dict[str, list[dict]]]:
    """Manifests with two configurations of one AppBinding, and a cluster where all of it is applied."""
    ms = [*manifests(), _edit("BackupConfiguration", ("metadata", "name"), "nightly-b")[3]]
    p = build({}, ms)
    actual = stored([c.after for c in p.changes if c.action is Action.CREATE and c.after is not None])
    for c in p.changes:
        if c.action is Action.STATUS:
            [obj] = [o for o in actual[c.kind] if o["metadata"]["name"] == c.name]
            obj["status"] = json.loads(json.dumps(c.after))
    return ms, actual


def test_equal_looking_status_diffs_of_two_configurations_keep_each_value_as_stored() -> None:
    # Equal diffs of many objects are kept once; 0 and False (equal in Python) must not merge into one.
    ms, actual = _converged_pair()
    configs = {o["metadata"]["name"]: o for o in actual["BackupConfiguration"]}
    configs["nightly"]["status"]["observedGeneration"] = 0
    configs["nightly-b"]["status"]["observedGeneration"] = False
    changes = json.loads(render_json(build(actual, ms)))["changes"]
    befores = {c["name"]: [d["before"] for d in c["diff"] if d["path"] == "observedGeneration"]
               for c in changes if c["action"] == "status"}
    assert befores == {"nightly": [0], "nightly-b": [False]}
    assert json.dumps(befores["nightly-b"]) == "[false]"


def test_conditions_of_many_configurations_are_each_their_own_and_apply_leaves_manifests_unchanged() -> None:
    ms = [*manifests(), _edit("BackupConfiguration", ("metadata", "name"), "nightly-b")[3]]
    given = json.loads(json.dumps(ms))
    p = build({}, ms)
    assert ms == given  # normalising (managed label, folded Secret) never writes into the loaded manifests
    statuses = {c.name: c.after for c in p.changes if c.action is Action.STATUS}
    target = {n: [c["message"] for c in s["conditions"] if c["type"] == "BackupTargetFound"]
              for n, s in statuses.items()}
    assert target == {"nightly": ["AppBinding demo/db found"], "nightly-b": ["AppBinding demo/db found"]}
    cron = {n: [c["message"] for c in s["conditions"] if c["type"] == "CronJobCreated"] for n, s in statuses.items()}
    assert cron == {"nightly": ["CronJob demo/stash-trigger-nightly"],
                    "nightly-b": ["CronJob demo/stash-trigger-nightly-b"]}
    labels = {c.address: c.after["metadata"]["labels"] for c in p.changes
              if c.action is Action.CREATE and c.after is not None and c.kind in plan_mod.SOURCE_KINDS}
    assert len(labels) == 5 and all(v == {MANAGED_LABEL: "stashplan"} for v in labels.values()), labels
