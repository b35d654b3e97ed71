"""Leader election on the real control plane: the Lease is renewed on its own timer, so a first iteration longer
than the lease keeps its leader (a standby never plans and writes beside it), and apply stops writing as soon as
the leader can no longer be sure it holds the Lease."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stashplan.api import builtin_addons, load_paths
from stashplan.apply.actual import make_plan
from stashplan.apply.writer import apply_plan
from stashplan.cluster.kube import KubeCluster
from stashplan.errors import LeadershipLost
from stashplan.managed_fields import FIELD_MANAGER
from stashplan.operator.leader import LeaderElector
from stashplan.operator.loop import LoopContext, StopFlag, run_loop
from tests.fixtures.examples import copy_examples
from tests.fixtures.kube_real import RealKube

pytestmark = pytest.mark.real_kube

LEASE = 3
CONFIGS = 12


class RecordingCluster(KubeCluster):
    """An operator's client, remembering every write it made (Lease writes go through another client)."""

    def __init__(self, kubeconfig: str) -> None:
        super().__init__(kubeconfig)
        self.writes: list[str] = []
        self.lock = threading.Lock()

    def _note(self, verb: str, kind: str, ns: str, name: str) -> None:
        with self.lock:
            self.writes.append(f"{verb} {kind}/{ns}/{name}")

    def create(self, obj: dict) -> dict:
        out = super().create(obj)
        self._note("create", out["kind"], out["metadata"].get("namespace", ""), out["metadata"]["name"])
        return out

    def replace(self, obj: dict) -> dict:
        out = super().replace(obj)
        self._note("replace", out["kind"], out["metadata"].get("namespace", ""), out["metadata"]["name"])
        return out

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict:
        out = super().apply(obj, field_manager=field_manager)
        self._note("apply", out["kind"], out["metadata"].get("namespace", ""), out["metadata"]["name"])
        return out

    def patch_status(self, kind: str, namespace: str, name: str, status: dict, *,
                     resource_version: str | None = None) -> dict:
        out = super().patch_status(kind, namespace, name, status, resource_version=resource_version)
        self._note("status", kind, namespace, name)
        return out

    def delete(self, kind: str, namespace: str, name: str) -> None:
        super().delete(kind, namespace, name)
        self._note("delete", kind, namespace, name)


def manifests(tmp_path: Path) -> list[dict]:
    """The example's Repository, AppBinding and Secret, and CONFIGS paused BackupConfigurations (no CronJob fires)."""
    docs = load_paths([copy_examples(tmp_path / "m", tmp_path / "demo")])
    config = next(d for d in docs if d["kind"] == "BackupConfiguration")
    out = [d for d in docs if d["kind"] != "BackupConfiguration"]
    for i in range(CONFIGS):
        c = copy.deepcopy(config)
        c["metadata"]["name"] = f"cfg-{i:02d}"
        c["spec"]["paused"] = True
        out.append(c)
    return out


@pytest.fixture
def real(real_kube: RealKube) -> RealKube:
    real_kube.reset(("demo", "stashplan"))
    try:
        real_kube.rest.delete("/apis/coordination.k8s.io/v1/namespaces/stashplan/leases/stashplan-operator")
    except Exception:
        pass
    return real_kube


def test_a_first_iteration_longer_than_the_lease_keeps_its_leader_and_the_standby_writes_nothing(
    real: RealKube, tmp_path: Path
) -> None:
    docs = manifests(tmp_path)
    calls = {"a": 0}

    def slow_first(who: str) -> Sequence[dict]:
        calls[who] += 1
        if calls[who] == 1:
            time.sleep(LEASE * 2.5)  # a long first full plan: the lease would have expired twice over
        return docs

    ops = {}
    for who in ("a", "b"):
        ops[who] = {
            "cluster": RecordingCluster(real.kubeconfig),
            "lease": KubeCluster(real.kubeconfig),
            "stop": StopFlag(),
            "errors": [],
        }
        ops[who]["elector"] = LeaderElector(ops[who]["lease"], "stashplan-operator", "stashplan", f"pod-{who}", LEASE)
    threads = []
    for who, delay in (("a", 0.0), ("b", 1.0)):
        op = ops[who]
        ctx = LoopContext(op["cluster"], 0.5, load_manifests=(lambda: slow_first("a")) if who == "a" else (lambda: docs),
                          addons=builtin_addons(), stop=op["stop"], leader=op["elector"],
                          report_error=lambda exc, d, e=op["errors"]: e.append(exc), watch_wakeups=True)
        time.sleep(delay)
        t = threading.Thread(target=run_loop, args=(ctx,), daemon=True)
        t.start()
        threads.append(t)
    try:
        probe = KubeCluster(real.kubeconfig)
        real.wait_for("every trigger CronJob", lambda: len(probe.list("CronJob", "demo")) == CONFIGS, timeout=60)
        time.sleep(LEASE)  # the standby keeps trying meanwhile
        probe.close()
    finally:
        for op in ops.values():
            op["stop"].set()
        for t in threads:
            t.join(30)
    a, b = ops["a"], ops["b"]
    assert b["cluster"].writes == [], "the standby wrote while the leader was still planning"
    assert a["errors"] == [] and b["errors"] == []
    created = [w.partition(" ")[2] for w in a["cluster"].writes if w.startswith(("create ", "apply "))]
    assert len(created) == len(set(created))  # each object written once (plans create by server-side apply)
    assert sum(w.startswith("CronJob/") for w in created) == CONFIGS
    for op in ops.values():
        op["cluster"].close()
        op["lease"].close()


def test_apply_stops_writing_as_soon_as_leadership_is_lost(real: RealKube, tmp_path: Path) -> None:
    lease_client, admin = KubeCluster(real.kubeconfig), KubeCluster(real.kubeconfig)
    elector = LeaderElector(lease_client, "stashplan-operator", "stashplan", "pod-a", LEASE)
    elector.start_renewing()
    assert elector.still_leading()

    class Stolen(RecordingCluster):
        """After its third write, another replica takes the Lease (as after a long pause of this one)."""

        def _note(self, verb: str, kind: str, ns: str, name: str) -> None:
            super()._note(verb, kind, ns, name)
            if len(self.writes) == 3:
                lease = admin.get("Lease", "stashplan", "stashplan-operator")
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                admin.replace(dict(lease, spec=dict(lease["spec"], holderIdentity="pod-b", renewTime=now,
                                                     leaseDurationSeconds=LEASE * 10)))
                end = time.monotonic() + LEASE * 2
                while elector.still_leading() and time.monotonic() < end:
                    time.sleep(0.05)

    cluster = Stolen(real.kubeconfig)
    try:
        plan = make_plan(cluster, manifests=manifests(tmp_path), addons=builtin_addons())
        assert len(plan.changes) > 10
        with pytest.raises(LeadershipLost, match="stopped applying after 3 of"):
            apply_plan(cluster, plan, may_write=elector.still_leading)
        assert len(cluster.writes) == 3
        assert admin.get("Lease", "stashplan", "stashplan-operator")["spec"]["holderIdentity"] == "pod-b"
    finally:
        elector.stop_renewing()
        for c in (cluster, lease_client, admin):
            c.close()
