"""The loop keeps to `--scope opted-in`: in its incremental iterations as in its full plans, a session Stash's
CronJob made in an unlabelled namespace gets no Job and no status, while one in a labelled namespace gets its Job
and the namespace's CronJob stays; and it logs no phase of a session left to Stash."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stashplan.api import builtin_addons
from stashplan.cluster.local.store import LocalCluster
from stashplan.desired.compute import Settings
from stashplan.desired.scope import Scope
from stashplan.desired.sessions import new_backup_session
from stashplan.operator.incremental import INFORMED_KINDS, Incremental
from stashplan.operator.informer import Informer
from stashplan.operator.loop import LoopContext, run_loop

ADDONS = builtin_addons()
OPTED = Settings(scope=Scope.OPTED_IN)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "state.db")
    c.create({"kind": "Namespace", "metadata": {"name": "opted", "labels": {"stashplan.dev/scope": "stashplan"}}})
    c.create({"kind": "Namespace", "metadata": {"name": "left"}})
    for ns in ("opted", "left"):
        c.create({"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": ns},
                  "stringData": {"RESTIC_PASSWORD": "pw"}})
        c.create({"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
                  "metadata": {"name": "repo", "namespace": ns},
                  "spec": {"backend": {"local": {"mountPath": str(tmp_path / ns)}, "storageSecretName": "repo-secret"}}})
        c.create({"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                  "metadata": {"name": "db", "namespace": ns},
                  "spec": {"type": "stashplan.dev/sqlite", "version": "3",
                           "clientConfig": {"url": f"sqlite:///{tmp_path}/{ns}.db"}}})
        c.create({"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
                  "metadata": {"name": "db", "namespace": ns},
                  "spec": {"schedule": "0 3 * * *", "task": {"name": "sqlite-backup-3"}, "repository": {"name": "repo"},
                           "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                              "name": "db"}}}})  # fmt: skip
    yield c
    c.close()


def test_incremental_iterations_act_only_on_opted_in_units(cluster: LocalCluster) -> None:
    inc = Incremental(Informer(cluster, INFORMED_KINDS, chunk=2.0).start(), resync=1e9)
    try:
        plan, _ = inc.run_once(addons=ADDONS, settings=OPTED)  # the first iteration is a full plan
        assert inc.last_scope is None and "1 object left to Stash (out of scope)" in plan.notes
        assert [c["metadata"]["name"] for c in cluster.list("CronJob")] == ["stash-trigger-db"]
        assert cluster.list("CronJob", "opted")
        for _ in range(20):  # let the watch deliver our own writes, planned away incrementally
            time.sleep(0.6)
            if not inc.informer.dirty.is_set():
                break
            inc.run_once(addons=ADDONS, settings=OPTED)
        mine = cluster.create(new_backup_session(cluster.get("BackupConfiguration", "opted", "db"), time.time()))
        stash = new_backup_session(cluster.get("BackupConfiguration", "left", "db"), time.time())
        stash["metadata"]["labels"].pop("app.kubernetes.io/managed-by")  # as Stash's own CronJob makes it
        stash = cluster.create(stash)
        assert inc.informer.dirty.wait(10), "the watch delivered no change"
        time.sleep(0.5)
        plan, _ = inc.run_once(addons=ADDONS, settings=OPTED)
        assert inc.last_scope is not None  # an incremental iteration
        assert sorted(f"{c.action.value} {c.address}" for c in plan.changes if c.kind in ("Job", "CronJob")) == [
            f"create Job/opted/stash-backup-{mine['metadata']['name']}"]
        assert "status" not in cluster.get("BackupSession", "left", stash["metadata"]["name"])
        assert not cluster.list("Job", "left") and not cluster.list("CronJob", "left")
        assert cluster.list("CronJob", "opted")  # its namespace's label was read: not planned away
    finally:
        inc.informer.close()


@pytest.mark.parametrize("scope", [Scope.ALL, Scope.OPTED_IN])
def test_the_loop_logs_phases_only_of_sessions_in_its_scope(cluster: LocalCluster, scope: Scope,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    stash = new_backup_session(cluster.get("BackupConfiguration", "left", "db"), time.time())
    stash["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    name = cluster.create(stash)["metadata"]["name"]
    calls: list[int] = []

    def manifests() -> list[dict]:  # read at the start of each iteration: Stash finishes its session before the 2nd
        calls.append(1)
        if len(calls) == 2:
            cluster.patch_status("BackupSession", "left", name, {"phase": "Succeeded"})
        return []

    ctx = LoopContext(cluster, 0.05, load_manifests=manifests, addons=ADDONS, settings=Settings(scope=scope),
                      max_iterations=2)
    with caplog.at_level(logging.INFO, logger="stashplan.operator.loop"):
        run_loop(ctx)
    logged = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert logged == ([f"BackupSession left/{name} Succeeded"] if scope is Scope.ALL else [])
