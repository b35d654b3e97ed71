"""The reconcile loop in kube mode against the API emulator: leader hand-over, API failures, Forbidden."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stashplan.api import builtin_addons, load_paths
from stashplan.cluster.kube import KubeCluster, RetryPolicy
from stashplan.desired.sessions import new_backup_session
from stashplan.errors import Forbidden
from stashplan.managed_fields import FIELD_MANAGER
from stashplan.operator.iteration import run_once
from stashplan.operator.leader import LeaderElector
from stashplan.operator.loop import LoopContext, StopFlag, run_loop
from tests.fixtures.examples import copy_examples
from tests.fixtures.kube import OPERATOR_TOKEN, KubeAPI

LEASE_SECONDS = 2


class RecordingCluster(KubeCluster):
    """The operator's KubeCluster, remembering what it created (plans create by server-side apply; a Job is never
    applied twice, so its apply is its creation)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.created: list[str] = []

    def create(self, obj: dict) -> dict:
        out = super().create(obj)
        self.created.append(f"{out['kind']}/{out['metadata']['name']}")
        return out

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict:
        out = super().apply(obj, field_manager=field_manager)
        self.created.append(f"{out['kind']}/{out['metadata']['name']}")
        return out


@dataclass
class Operator:
    """One replica: a loop thread with its own client, lease candidate and error log."""

    name: str
    cluster: RecordingCluster
    elector: LeaderElector
    wakeups: bool = True  # wait on watch events between iterations (as in a cluster)
    stop: StopFlag = field(default_factory=StopFlag)
    errors: list[Exception] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        def run() -> None:
            run_loop(LoopContext(
                self.cluster,
                0.1,
                addons=builtin_addons(),
                stop=self.stop,
                leader=self.elector,
                report_error=lambda exc, delay: self.errors.append(exc),
                watch_wakeups=self.wakeups,
            ))

        self.thread = threading.Thread(target=run, name=f"loop-{self.name}", daemon=True)
        self.thread.start()

    def kill(self) -> None:
        """Stop without releasing the lease, as a crashed pod would."""
        self.elector.stop_renewing()
        self.elector.release = lambda: None  # type: ignore[method-assign]
        self.stop.set()
        if self.thread:
            self.thread.join(timeout=30)


@pytest.fixture
def operators(kube_api: KubeAPI) -> Iterator[Callable[[str], Operator]]:
    started: list[Operator] = []

    def make(name: str) -> Operator:
        cluster = RecordingCluster(
            kube_api.operator_kubeconfig, retry=RetryPolicy(attempts=3, base_delay=0.02)
        )
        op = Operator(name, cluster, LeaderElector(cluster, "stashplan", "stashplan", name, LEASE_SECONDS))
        started.append(op)
        return op

    yield make
    for op in started:
        op.kill()
        op.cluster.close()


@pytest.fixture
def admin(kube_api: KubeAPI, tmp_path: Path) -> Iterator[KubeCluster]:
    cluster = KubeCluster(kube_api.kubeconfig)
    for obj in load_paths([copy_examples(tmp_path / "examples", tmp_path / "demo")]):
        cluster.create(obj)
    yield cluster
    cluster.close()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def names(api: KubeAPI, kind: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in api.objects(kind))


def start_session(admin: KubeCluster, name_time: float, config_name: str = "app-db-backup") -> str:
    config = admin.get("BackupConfiguration", "demo", config_name)
    return str(admin.create(new_backup_session(config, name_time))["metadata"]["name"])


def test_two_loops_one_leader_then_the_standby_takes_over_without_duplicates(
    kube_api: KubeAPI, admin: KubeCluster, operators: Callable[[str], Operator]
) -> None:
    a, b = operators("pod-a"), operators("pod-b")
    a.start()
    wait_for(
        "pod-a to create the trigger CronJob",
        lambda: names(kube_api, "CronJob") == ["stash-trigger-app-db-backup"],
    )
    b.start()
    first = start_session(admin, 1_000)
    wait_for("the first backup Job", lambda: names(kube_api, "Job") == [f"stash-backup-{first}"])
    time.sleep(0.5)
    assert a.elector.is_leader and not b.elector.is_leader
    assert b.cluster.created == [], "the standby must not write"

    a.kill()
    took = wait_for("pod-b to take the lease", lambda: b.elector.is_leader, timeout=LEASE_SECONDS + 5)
    assert took <= LEASE_SECONDS + 1.5
    other = admin.get("BackupConfiguration", "demo", "app-db-backup")
    other["metadata"] = {"name": "other-backup", "namespace": "demo"}
    admin.create(other)
    wait_for("pod-b to create the second CronJob", lambda: len(names(kube_api, "CronJob")) == 2)
    second = start_session(admin, 2_000, "other-backup")
    wait_for("the second backup Job", lambda: f"stash-backup-{second}" in names(kube_api, "Job"))
    time.sleep(0.5)

    assert names(kube_api, "Job") == sorted([f"stash-backup-{first}", f"stash-backup-{second}"])
    assert names(kube_api, "CronJob") == ["stash-trigger-app-db-backup", "stash-trigger-other-backup"]
    jobs_by = {op.name: [c for c in op.cluster.created if c.startswith("Job/")] for op in (a, b)}
    assert jobs_by == {"pod-a": [f"Job/stash-backup-{first}"], "pod-b": [f"Job/stash-backup-{second}"]}
    assert (kube_api.objects("Lease")[0]["spec"]["holderIdentity"], a.errors, b.errors) == ("pod-b", [], [])


def test_the_loop_keeps_going_through_api_server_errors(
    kube_api: KubeAPI, admin: KubeCluster, operators: Callable[[str], Operator]
) -> None:
    op = operators("pod-a")
    op.wakeups = False  # only the iterations list: each 3 injected 500s fail one iteration
    op.start()
    wait_for("the trigger CronJob", lambda: bool(names(kube_api, "CronJob")))
    kube_api.fail_next(500, count=12, verb="list")
    session = start_session(admin, 3_000)
    wait_for("the backup Job despite 500s", lambda: names(kube_api, "Job") == [f"stash-backup-{session}"])
    assert op.thread is not None and op.thread.is_alive()
    assert len(op.errors) == 4 and all("gave up after 3 attempts" in str(e) for e in op.errors), op.errors


def test_a_missing_permission_is_reported_as_forbidden_with_verb_and_resource(
    kube_api: KubeAPI, admin: KubeCluster, operators: Callable[[str], Operator]
) -> None:
    grants = kube_api.emulator.rbac[OPERATOR_TOKEN]
    kube_api.emulator.rbac[OPERATOR_TOKEN] = grants - {("list", "appcatalog.appscode.com/appbindings")}
    try:
        op = operators("pod-a")
        op.start()
        wait_for("an error report", lambda: bool(op.errors))
    finally:
        kube_api.emulator.rbac[OPERATOR_TOKEN] = grants
    error = op.errors[0]
    assert isinstance(error, Forbidden)
    assert "cannot list appbindings" in str(error)
    assert names(kube_api, "CronJob") == []


def test_a_410_on_the_wake_up_watch_relists_and_the_loop_keeps_applying(
    kube_api: KubeAPI, admin: KubeCluster, operators: Callable[[str], Operator]
) -> None:
    op = operators("pod-a")
    op.start()
    wait_for("the trigger CronJob", lambda: bool(names(kube_api, "CronJob")))
    kube_api.fail_next(410, count=5, verb="watch")
    session = start_session(admin, 4_000)
    wait_for("the backup Job after 410s", lambda: names(kube_api, "Job") == [f"stash-backup-{session}"])
    assert op.errors == []


def test_a_no_change_iteration_makes_the_same_api_calls_for_few_or_many_configurations(
    kube_api: KubeAPI, admin: KubeCluster
) -> None:
    operator = KubeCluster(kube_api.operator_kubeconfig)
    config = admin.get("BackupConfiguration", "demo", "app-db-backup")
    calls = []
    for total in (3, 30):
        for i in range(len(admin.list("BackupConfiguration", "demo")), total):
            admin.create(dict(config, metadata={"name": f"cfg-{i}", "namespace": "demo"}))
        while run_once(operator, addons=builtin_addons()).changed:
            pass
        kube_api.reset_counters()
        assert not run_once(operator, addons=builtin_addons()).changed
        calls.append(kube_api.counts)
    assert calls[0] == calls[1]
    assert set(calls[0]) == {"list"}
    operator.close()
