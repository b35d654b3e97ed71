"""Plan: create / update / no-op / delete, owned vs unowned objects, masked secrets, the JSON shape."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime

from rich.console import Console

from stashplan.api import builtin_addons
from stashplan.kinds import MANAGED_LABEL
from stashplan.plan import build as plan_mod
from stashplan.plan.model import Action, Plan
from stashplan.plan.render import render_json, render_plan
from stashplan.plan.saved import from_json, to_json

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def manifests() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
         "stringData": {"RESTIC_PASSWORD": "hunter2-very-secret"}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
         "metadata": {"name": "repo", "namespace": "demo"},
         "spec": {"backend": {"local": {"mountPath": "/tmp/repo"}, "storageSecretName": "repo-secret"}}},
        {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
         "metadata": {"name": "db", "namespace": "demo"},
         "spec": {"type": "stashplan.dev/sqlite", "clientConfig": {"url": "sqlite:////tmp/db.sqlite"}}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
         "metadata": {"name": "nightly", "namespace": "demo"},
         "spec": {"schedule": "0 3 * * *", "task": {"name": "sqlite-backup-3"}, "repository": {"name": "repo"},
                  "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                     "name": "db"}},
                  "retentionPolicy": {"name": "keep", "keepLast": 3, "prune": True}}},
    ]


def stored(objs: list[dict]) -> dict[str, list[dict]]:
    """What a cluster holds after applying `objs` (as apply writes them, with server metadata)."""
    out: dict[str, list[dict]] = {}
    for i, obj in enumerate(objs):
        o = plan_mod.normalise_manifest(obj) if obj["kind"] not in ("CronJob", "Job") else copy.deepcopy(obj)
        o["metadata"].update(uid=f"uid-{i}", resourceVersion=str(100 + i), generation=1,
                             creationTimestamp="2026-11-25T10:00:00Z")
        out.setdefault(o["kind"], []).append(o)
    uids = {(o["kind"], o["metadata"]["name"]): o["metadata"]["uid"] for objs in out.values() for o in objs}
    for objs in out.values():
        for o in objs:  # as apply does: owners created in the same apply get their uid filled in
            for ref in o["metadata"].get("ownerReferences") or []:
                ref.setdefault("uid", uids[(ref["kind"], ref["name"])])
    return out


def build(actual: dict[str, list[dict]], ms: list[dict] | None = None, prune: bool = False) -> Plan:
    return plan_mod.build(plan_mod.Inputs(actual=actual, manifests=manifests() if ms is None else ms,
                                          addons=builtin_addons(), prune=prune), NOW)


def converged() -> dict[str, list[dict]]:
    """A cluster where the manifests, their CronJob and statuses are all applied."""
    p = build({})
    objs = [c.after for c in p.changes if c.action is Action.CREATE]
    actual = stored([o for o in objs if o is not None])
    for c in p.changes:
        if c.action is Action.STATUS:
            [obj] = [o for o in actual[c.kind] if o["metadata"]["name"] == c.name]
            obj["status"] = c.after
    return actual


def test_empty_cluster_plans_creates_for_manifests_and_cronjob() -> None:
    p = build({})
    creates = sorted(c.address for c in p.changes if c.action is Action.CREATE)
    assert creates == ["AppBinding/demo/db", "BackupConfiguration/demo/nightly", "CronJob/demo/stash-trigger-nightly",
                       "Repository/demo/repo", "RoleBinding/demo/stashplan-job", "Secret/demo/repo-secret",
                       "ServiceAccount/demo/stashplan-job"]
    assert p.counts() == {"add": 7, "change": 0, "destroy": 0, "status": 1}


def test_converged_cluster_plans_nothing() -> None:
    assert build(converged()).empty


def test_schedule_change_is_a_one_field_update_on_config_and_cronjob() -> None:
    ms = manifests()
    ms[3]["spec"]["schedule"] = "*/10 * * * *"
    p = build(converged(), ms)
    updates = {c.address: c.diff for c in p.changes if c.action is Action.UPDATE}
    assert set(updates) == {"BackupConfiguration/demo/nightly", "CronJob/demo/stash-trigger-nightly"}
    for diff in updates.values():
        assert [(d.path, d.before, d.after) for d in diff] == [("spec.schedule", "0 3 * * *", "*/10 * * * *")]


def test_server_filled_fields_do_not_make_a_diff() -> None:
    actual = converged()
    cronjob = actual["CronJob"][0]
    cronjob["spec"]["startingDeadlineSeconds"] = None
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    cronjob["metadata"]["managedFields"] = [{"manager": "kube-controller-manager"}]
    assert build(actual).empty


def test_unowned_object_is_never_updated_only_warned_about() -> None:
    actual = converged()
    del actual["CronJob"][0]["metadata"]["labels"][MANAGED_LABEL]
    actual["CronJob"][0]["spec"]["schedule"] = "1 1 * * *"
    p = build(actual)
    assert not [c for c in p.changes if c.kind == "CronJob"]
    assert any("CronJob/demo/stash-trigger-nightly exists and is not managed" in w for w in p.warnings)


def test_owned_cronjob_of_deleted_config_is_destroyed_but_unowned_is_kept() -> None:
    actual = converged()
    del actual["BackupConfiguration"]
    stray = copy.deepcopy(actual["CronJob"][0])
    stray["metadata"]["name"] = "someone-elses"
    del stray["metadata"]["labels"][MANAGED_LABEL]
    actual["CronJob"].append(stray)
    p = build(actual, [m for m in manifests() if m["kind"] != "BackupConfiguration"])
    deletes = [c.address for c in p.changes if c.action is Action.DELETE]
    assert deletes == ["CronJob/demo/stash-trigger-nightly"]


def test_prune_destroys_applied_objects_missing_from_manifests() -> None:
    actual = converged()
    p = build(actual, [m for m in manifests() if m["kind"] != "AppBinding"], prune=True)
    assert "AppBinding/demo/db" in [c.address for c in p.changes if c.action is Action.DELETE]
    p = build(actual, [m for m in manifests() if m["kind"] != "AppBinding"], prune=False)
    assert not [c for c in p.changes if c.action is Action.DELETE]


def test_secret_values_never_appear_in_rendered_or_json_plans() -> None:
    ms = manifests()
    p = build({}, ms)
    out = io.StringIO()
    render_plan(p, Console(file=out, width=200, color_system=None))
    ms2 = manifests()
    ms2[0]["stringData"]["RESTIC_PASSWORD"] = "another-secret-value"
    changed = build(converged(), ms2)
    render_plan(changed, Console(file=out, width=200, color_system=None))
    text = out.getvalue() + render_json(p) + render_json(changed) + json.dumps(to_json(p, secret_key=b"k" * 32))
    assert "hunter2" not in text and "aHVudGVy" not in text and "another-secret" not in text
    assert "(sensitive value)" in text
    assert "~ data.RESTIC_PASSWORD: \"(sensitive value)\" -> \"(sensitive value)\"" in out.getvalue()


def test_rendered_plan_has_terraform_symbols_and_summary() -> None:
    ms = manifests()
    ms[3]["spec"]["schedule"] = "*/10 * * * *"
    out = io.StringIO()
    render_plan(build(converged(), ms), Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "~ CronJob/demo/stash-trigger-nightly will be updated in-place" in text
    assert '~ spec.schedule: "0 3 * * *" -> "*/10 * * * *"' in text
    assert "~ observedGeneration: 1 -> 2" in text
    assert text.rstrip().endswith("Plan: 0 to add, 2 to change, 0 to destroy. 1 status update.")


def test_json_plan_follows_documented_schema_and_round_trips() -> None:
    p = build({})
    data = json.loads(render_json(p))
    assert data["format_version"] == 1
    assert data["summary"] == {"add": 7, "change": 0, "destroy": 0, "status": 1}
    for change in data["changes"]:
        assert set(change) >= {"address", "action", "symbol", "kind", "namespace", "name", "reason", "before",
                               "after", "diff", "resource_version"}
        assert change["action"] in ("create", "update", "delete", "status")
    back, digests = from_json(to_json(p, secret_key=b"k" * 32))
    assert [c.address for c in back.changes] == [c.address for c in p.changes]
    assert set(digests) == {"Secret/demo/repo-secret"}
