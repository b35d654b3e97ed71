"""What a server-side apply removes, as the planner predicts it from metadata.managedFields (pure)."""

from __future__ import annotations

from stashplan.managed_fields import conflicts, removals

KEYED = 'k:{"name":"c"}'


def cronjob(env: list[dict], entries: list[dict]) -> dict:
    """A CronJob as an API server returns it: keyed container and env items in its FieldsV1, defaults unowned."""
    container = {"name": "c", "image": "img", "env": env, "terminationMessagePath": "/dev/termination-log"}
    return {"kind": "CronJob", "metadata": {"name": "t", "namespace": "ns", "managedFields": entries},
            "spec": {"schedule": "* * * * *", "suspend": False, "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [container]}}}}}}  # fmt: skip


def apply_entry(manager: str, env_names: list[str], suspend: bool = True) -> dict:
    env = {f'k:{{"name":"{n}"}}': {".": {}, "f:name": {}, "f:value": {}} for n in env_names}
    containers = {KEYED: {".": {}, "f:name": {}, "f:image": {}, "f:env": env}}
    spec: dict = {"f:schedule": {}, "f:jobTemplate": {"f:spec": {"f:template": {"f:spec": {"f:containers": containers}}}}}
    if suspend:
        spec["f:suspend"] = {}
    return {"manager": manager, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": spec}}


def wanted(env: list[dict]) -> dict:
    return {"kind": "CronJob", "metadata": {"name": "t", "namespace": "ns"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "img", "env": env}]}}}}}}  # fmt: skip


def test_fields_and_keyed_items_stashplan_applied_and_no_longer_sends_are_removed() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    current = cronjob(env, [apply_entry("stashplan", ["A", "B"])])
    gone = removals(current, wanted([{"name": "A", "value": "1"}]))
    containers = ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0)
    assert sorted(gone, key=str) == [((*containers, "env", 1), {"name": "B", "value": "2"}), (("spec", "suspend"), False)]


def test_server_defaults_and_fields_another_manager_also_owns_stay() -> None:
    env = [{"name": "A", "value": "1"}]
    current = cronjob(env, [apply_entry("stashplan", ["A"]), apply_entry("ops", [], suspend=True)])
    assert removals(current, wanted(env)) == []  # suspend is shared with "ops"; terminationMessagePath is nobody's


def test_a_field_another_manager_owns_with_another_value_is_a_conflict() -> None:
    current = cronjob([], [apply_entry("ops", [])])
    del current["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"]
    changed = wanted([])
    changed["spec"]["schedule"] = "0 1 * * *"
    assert [(c.path, c.manager) for c in conflicts(current, changed)] == [("spec.schedule", "ops")]
    assert conflicts(current, wanted([])) == []  # the same value: shared, not a conflict
