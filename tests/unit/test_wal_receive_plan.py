"""A base-backup BackupConfiguration with Task param walArchive=receive gets a WAL receiver Deployment in its plan:
the pod of its backup Jobs running `stashplan transfer wal-receive`, scaled to 0 while paused, refused in one
line for a bad value, deleted when the configuration goes or stops asking for it. Pure: no server."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from stashplan.api import builtin_addons
from stashplan.desired import compute as desired
from stashplan.desired.wal_receive import default_slot
from stashplan.plan.build import Inputs, build
from stashplan.plan.model import Action
from tests.unit.test_desired_state import base_world, session

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def world(params: dict[str, str] | None = None, task: str = "postgres-basebackup-15", **spec: object) -> dict:
    out = base_world()
    config = out["BackupConfiguration"][0]
    config["spec"]["task"] = {"name": task, "params": [{"name": k, "value": v} for k, v in (params or {}).items()]}
    config["spec"].update(spec)
    out["AppBinding"][0]["spec"]["clientConfig"]["url"] = "postgresql://127.0.0.1:5432/"
    out["AppBinding"][0]["spec"]["secret"] = {"name": "pg-auth"}
    return out


SETTINGS = desired.Settings(image="reg.example/sp:1")


def compute(objs: dict) -> desired.Desired:
    return desired.compute(desired.World(objs, builtin_addons()), NOW, SETTINGS)


def receivers(out: desired.Desired) -> list[dict]:
    return [o for o in out.objects if o["kind"] == "Deployment"]


def test_walarchive_receive_adds_a_deployment_running_the_backup_jobs_pod_as_a_receiver() -> None:
    objs = world({"walArchive": "receive"})
    objs["BackupSession"] = [session("nightly-1")]
    out = compute(objs)
    assert out.refusals == []
    [deploy] = receivers(out)
    meta, spec = deploy["metadata"], deploy["spec"]
    assert (meta["name"], meta["namespace"]) == ("nightly-wal-receive", "demo")
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "stashplan"
    assert meta["labels"]["app.kubernetes.io/component"] == "wal-receive"
    assert meta["ownerReferences"][0]["kind"] == "BackupConfiguration"
    assert meta["ownerReferences"][0]["name"] == "nightly"
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert pod["restartPolicy"] == "Always"
    assert container["command"] == ["stashplan"]
    assert container["args"] == ["transfer", "wal-receive", "--namespace=demo", "--backupconfiguration=nightly",
                                 "--slot=stashplan_nightly", "--partial-interval=5",
                                 "--deployment=nightly-wal-receive"]  # its end drops the slot
    # The identity, image and Secrets of a backup Job of the same configuration.
    [job] = [o for o in out.objects if o["kind"] == "Job"]
    job_pod = job["spec"]["template"]["spec"]
    [job_container] = job_pod["containers"]
    assert pod["serviceAccountName"] == job_pod["serviceAccountName"] == "stashplan-job"
    assert container["image"] == job_container["image"] == "reg.example/sp:1"
    assert container["envFrom"] == job_container["envFrom"]
    assert sorted(e["secretRef"]["name"] for e in container["envFrom"]) == ["pg-auth", "repo-secret"]
    assert container.get("env") == job_container.get("env")


def test_without_walarchive_there_is_no_receiver() -> None:
    assert receivers(compute(world())) == []
    assert receivers(compute(world({"walArchive": ""}))) == []


def test_a_paused_configuration_scales_its_receiver_to_zero() -> None:
    [deploy] = receivers(compute(world({"walArchive": "receive"}, paused=True)))
    assert deploy["spec"]["replicas"] == 0


def test_slot_and_interval_params_reach_the_receiver_and_the_default_slot_is_sanitised() -> None:
    [deploy] = receivers(compute(world({"walArchive": "receive", "walSlot": "my_slot", "walPartialInterval": "0.5"})))
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--slot=my_slot" in args and "--partial-interval=0.5" in args
    assert default_slot("Orders.DB-eu") == "stashplan_orders_db_eu"
    assert default_slot("x" * 80) == "stashplan_" + "x" * 53


@pytest.mark.parametrize("params,task,why", [
    ({"walArchive": "push"}, "postgres-basebackup-15", "spec.task.params: walArchive 'push': the only value of "
     "walArchive is 'receive'"),
    ({"walSlot": "s"}, "postgres-basebackup-15", "spec.task.params: walSlot without walArchive"),
    ({"walArchive": "receive", "walSlot": "Bad-Slot"}, "postgres-basebackup-15",
     "spec.task.params: walSlot 'Bad-Slot': a replication slot name"),
    ({"walArchive": "receive", "walPartialInterval": "0"}, "postgres-basebackup-15",
     "spec.task.params: walPartialInterval '0': seconds"),
    ({"walArchive": "receive", "walPartialInterval": "soon"}, "postgres-basebackup-15",
     "spec.task.params: walPartialInterval 'soon'"),
    ({"walArchive": "receive"}, "postgres-backup-15", "spec.task.params: walArchive: WAL archiving is for Task "
     "postgres-basebackup-<version> (base backups), not postgres-backup-15"),
])
def test_a_bad_value_or_another_task_is_refused_in_one_line_naming_the_field(
    params: dict[str, str], task: str, why: str
) -> None:
    out = compute(world(params, task))
    [line] = out.refusals
    assert line.startswith(f"BackupConfiguration demo/nightly: {why}"), line
    assert receivers(out) == [] and not [o for o in out.objects if o["kind"] == "CronJob"]


def test_local_mode_refuses_a_receiver_this_machine_cannot_run() -> None:
    local = desired.Settings(command_available=lambda command: command != "pg_receivewal")
    out = desired.compute(desired.World(world({"walArchive": "receive"}), builtin_addons()), NOW, local)
    [line] = out.refusals
    assert line == ("BackupConfiguration demo/nightly: spec.task.params: walArchive receive runs 'pg_receivewal', "
                    "which is not a command on this machine: local mode runs the receiver here")
    assert receivers(out) == []


def _applied(objs: dict) -> dict[str, list[dict]]:
    """What exists after applying the plan of `objs` (server metadata filled as a cluster would)."""
    actual = copy.deepcopy(objs)
    for obj in compute(objs).objects:
        obj = copy.deepcopy(obj)
        obj["metadata"].update(uid=f"uid-{obj['metadata']['name']}", resourceVersion="7")
        actual.setdefault(obj["kind"], []).append(obj)
    return actual


def _deleted(actual: dict[str, list[dict]]) -> list[str]:
    plan = build(Inputs(actual=actual, addons=builtin_addons()), NOW, SETTINGS)
    return [f"{c.kind}/{c.name}: {c.reason}" for c in plan.changes if c.action is Action.DELETE]


def test_the_plan_deletes_the_receiver_when_its_configuration_goes_or_stops_asking_for_it() -> None:
    actual = _applied(world({"walArchive": "receive"}))
    assert [d["metadata"]["name"] for d in actual["Deployment"]] == ["nightly-wal-receive"]
    assert _deleted(actual) == []  # applied: nothing more to do
    gone = {**actual, "BackupConfiguration": []}
    assert "Deployment/nightly-wal-receive: its BackupConfiguration is gone, invalid, or no longer asks for " \
           "walArchive receive" in _deleted(gone)
    stopped = copy.deepcopy(actual)
    stopped["BackupConfiguration"][0]["spec"]["task"]["params"] = []
    assert [d for d in _deleted(stopped) if d.startswith("Deployment/")] != []
    foreign = copy.deepcopy(actual)  # a Deployment stashplan did not make is never touched
    foreign["Deployment"][0]["metadata"]["labels"] = {"app": "mine"}
    foreign["BackupConfiguration"] = []
    assert [d for d in _deleted(foreign) if d.startswith("Deployment/")] == []


def test_the_plan_creates_then_scales_the_receiver() -> None:
    plan = build(Inputs(actual=world({"walArchive": "receive"}), addons=builtin_addons()), NOW, SETTINGS)
    [create] = [c for c in plan.changes if c.kind == "Deployment"]
    assert create.action is Action.CREATE and "streams WAL" in create.reason
    actual = _applied(world({"walArchive": "receive"}))
    actual["BackupConfiguration"][0]["spec"]["paused"] = True
    plan = build(Inputs(actual=actual, addons=builtin_addons()), NOW, SETTINGS)
    [scale] = [c for c in plan.changes if c.kind == "Deployment"]
    assert scale.action is Action.UPDATE
    assert [(d.path, d.before, d.after) for d in scale.diff] == [("spec.replicas", 1, 0)]


def test_the_operator_metrics_name_the_receivers_that_should_run_from_the_planned_deployments() -> None:
    """stashplan_backupconfiguration_wal_receiver (what StashplanWALReceiverStale joins on) is read from the
    Deployments the plan makes: 1 while the configuration wants its receiver, gone when paused; a receiver of a
    configuration outside the operator's scope (another operator's) and a Deployment someone else labelled
    alike are not counted."""
    from stashplan.operator.loop_metrics import observe

    objs = world({"walArchive": "receive"})
    [config] = objs["BackupConfiguration"]
    [deploy] = receivers(compute(objs))
    assert observe([config], [], [deploy]).receivers == (("demo", "nightly"),)
    [idle] = receivers(compute(world({"walArchive": "receive"}, paused=True)))
    assert observe([config], [], [idle]).receivers == ()
    assert observe([], [], [deploy]).receivers == ()  # its configuration is not in this operator's scope
    foreign = copy.deepcopy(deploy)
    foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "someone-else"
    assert observe([config], [], [foreign]).receivers == ()
    assert observe([config], [], []).receivers == ()
