"""The loop over an informer cache plans only what changed, and plans it exactly as a full plan would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stashplan.api import builtin_addons
from stashplan.apply.actual import make_plan
from stashplan.cluster.local.store import LocalCluster
from stashplan.desired.sessions import new_backup_session
from stashplan.operator.incremental import INFORMED_KINDS, Incremental
from stashplan.operator.informer import Informer
from stashplan.plan.model import Plan

NS = "demo"
ADDONS = builtin_addons()


def config(name: str, schedule: str = "0 3 * * *") -> dict:
    return {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"schedule": schedule, "task": {"name": "sqlite-backup-3"}, "repository": {"name": "repo"},
                     "timeOut": "10m",
                     "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                        "name": "db"}}}}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "state.db")
    c.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": NS},
              "stringData": {"RESTIC_PASSWORD": "pw"}})
    c.create({"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
              "metadata": {"name": "repo", "namespace": NS},
              "spec": {"backend": {"local": {"mountPath": str(tmp_path / "repo")}, "storageSecretName": "repo-secret"}}})
    c.create({"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
              "metadata": {"name": "db", "namespace": NS},
              "spec": {"type": "stashplan.dev/sqlite", "version": "3",
                       "clientConfig": {"url": f"sqlite:///{tmp_path}/app.db"}}})
    for i in range(20):
        c.create(config(f"db-{i:02d}"))
    yield c
    c.close()


@pytest.fixture
def loop(cluster: LocalCluster) -> Iterator[Incremental]:
    inc = Incremental(Informer(cluster, INFORMED_KINDS, chunk=2.0).start(), resync=1e9)
    for _ in range(5):
        plan, _ = inc.run_once(addons=ADDONS)
        if plan.empty:
            break
    settle(inc)
    yield inc
    inc.informer.close()


def settle(inc: Incremental, now: datetime | None = None) -> None:
    """Let the watch deliver what was written (ours included) and plan it away."""
    for _ in range(20):
        time.sleep(0.6)  # the local store's watch polls every 0.2 s
        if not inc.informer.dirty.is_set():
            return
        inc.run_once(addons=ADDONS, now=now)
    raise AssertionError("the loop did not settle")


def wait_for_change(inc: Incremental) -> None:
    assert inc.informer.dirty.wait(10), "the watch delivered no change"


def addresses(plan: Plan) -> list[str]:
    return sorted(c.address + ":" + c.action.value for c in plan.changes)


def test_no_change_iteration_plans_nothing_and_reads_nothing(loop: Incremental) -> None:
    relists = loop.informer.relists
    plan, result = loop.run_once(addons=ADDONS)
    assert plan.empty and not result.applied
    assert loop.last_scope == 0 and loop.informer.relists == relists


def test_an_edited_configuration_is_planned_alone_and_as_a_full_plan_would(
    cluster: LocalCluster, loop: Incremental
) -> None:
    obj = cluster.get("BackupConfiguration", NS, "db-07")
    obj["spec"]["schedule"] = "30 4 * * *"
    cluster.replace(obj)
    wait_for_change(loop)
    now = datetime.now(UTC)
    full = make_plan(cluster, addons=ADDONS, now=now)
    plan, _result = loop.run_once(addons=ADDONS, now=now)
    assert loop.last_scope == 1
    assert addresses(plan) == addresses(full)
    assert "CronJob/demo/stash-trigger-db-07:update" in addresses(plan)
    assert cluster.get("CronJob", NS, "stash-trigger-db-07")["spec"]["schedule"] == "30 4 * * *"


def test_a_new_session_gets_its_job_and_fails_at_its_deadline_with_no_further_change(
    cluster: LocalCluster, loop: Incremental
) -> None:
    session = cluster.create(new_backup_session(cluster.get("BackupConfiguration", NS, "db-03"), time.time()))
    name = session["metadata"]["name"]
    wait_for_change(loop)
    plan, _ = loop.run_once(addons=ADDONS)
    assert f"Job/demo/stash-backup-{name}:create" in addresses(plan)
    assert cluster.get("BackupSession", NS, name)["status"]["phase"] == "Running"
    later = datetime.now(UTC) + timedelta(minutes=11)  # past timeOut: nothing changes, time passes
    settle(loop, now=datetime.now(UTC))
    full = make_plan(cluster, addons=ADDONS, now=later)
    plan, _ = loop.run_once(addons=ADDONS, now=later)
    assert addresses(plan) == addresses(full)
    assert cluster.get("BackupSession", NS, name)["status"]["phase"] == "Failed"


def test_a_deleted_repository_makes_a_full_plan(cluster: LocalCluster, loop: Incremental) -> None:
    cluster.delete("Repository", NS, "repo")
    wait_for_change(loop)
    now = datetime.now(UTC)
    full = make_plan(cluster, addons=ADDONS, now=now)
    plan, _ = loop.run_once(addons=ADDONS, now=now)
    assert loop.last_scope is None  # a shared object changed: everything was planned
    assert addresses(plan) == addresses(full)
    assert cluster.get("BackupConfiguration", NS, "db-19")["status"]["phase"] == "NotReady"


def test_a_deleted_configuration_loses_its_cronjob(cluster: LocalCluster, loop: Incremental) -> None:
    # As on a server whose garbage collector is slow: the CronJob outlives its configuration for a while.
    cron = cluster.get("CronJob", NS, "stash-trigger-db-11")
    cron["metadata"]["ownerReferences"] = []
    cluster.replace(cron)
    cluster.delete("BackupConfiguration", NS, "db-11")
    wait_for_change(loop)
    time.sleep(0.5)
    plan, _ = loop.run_once(addons=ADDONS)
    assert "CronJob/demo/stash-trigger-db-11:delete" in addresses(plan)
    assert not [o for o in cluster.list("CronJob", NS) if o["metadata"]["name"] == "stash-trigger-db-11"]


def test_a_configuration_with_a_target_in_another_namespace_is_refused_as_a_full_plan_would(
    cluster: LocalCluster, loop: Incremental
) -> None:
    cluster.create({"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                    "metadata": {"name": "db", "namespace": "apps"},
                    "spec": {"type": "stashplan.dev/sqlite", "version": "3",
                             "clientConfig": {"url": "sqlite:////tmp/other-app.db"}}})
    settle(loop)  # an AppBinding is shared: a full plan (nothing refers to this one yet)
    obj = config("cross")
    obj["spec"]["target"]["ref"]["namespace"] = "apps"
    cluster.create(obj)
    refusal = ("BackupConfiguration demo/cross: spec.target.ref.namespace: AppBinding apps/db is in another "
               "namespace; a target must be in the BackupConfiguration's own namespace (demo), so that a namespace reaches "
               "only its own objects (Stash's cross-namespace targets are not supported: create the "
               "BackupConfiguration in apps)")
    for edit in (False, True):
        if edit:
            edited = cluster.get("BackupConfiguration", NS, "cross")
            edited["spec"]["schedule"] = "15 2 * * *"
            cluster.replace(edited)
        wait_for_change(loop)
        now = datetime.now(UTC)
        full = make_plan(cluster, addons=ADDONS, now=now)
        plan, _ = loop.run_once(addons=ADDONS, now=now)
        assert loop.last_scope == 1
        assert addresses(plan) == addresses(full)
        assert refusal in plan.refusals and refusal in full.refusals
        assert not [a for a in addresses(plan) if a.startswith(("CronJob/demo/stash-trigger-apps-cross", "RoleBinding/apps/"))]
        assert cluster.get("BackupConfiguration", NS, "cross")["status"]["phase"] == "Invalid"
    assert not cluster.list("RoleBinding", "apps")
