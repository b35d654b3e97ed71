"""Planner benchmark: `plan` over N BackupConfigurations whose CronJobs are applied (no change, 10% changed).

Reads go through the local store (SQLite), so the figure includes reading the actual state.
Env: BENCH_CONFIGS (default 10000). Target: no-change plan under 2 s on the 2-core machine.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from stashplan.api import builtin_addons
from stashplan.cluster.local import LocalCluster
from stashplan.reconcile.apply import apply_plan
from stashplan.reconcile.loop import make_plan

N = int(os.environ.get("BENCH_CONFIGS", "10000"))


def base_objects() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "bench"},
         "stringData": {"RESTIC_PASSWORD": "bench"}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
         "metadata": {"name": "repo", "namespace": "bench"},
         "spec": {"backend": {"local": {"mountPath": "/tmp/bench-repo"}, "storageSecretName": "repo-secret"}}},
    ]


def config(i: int, schedule: str = "0 3 * * *") -> dict:
    return {
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
        "metadata": {"name": f"db-{i:05d}", "namespace": "bench"},
        "spec": {"schedule": schedule, "task": {"name": "postgres-backup-15"}, "repository": {"name": "repo"},
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                    "name": f"db-{i:05d}"}},
                 "retentionPolicy": {"name": "keep", "keepLast": 5, "prune": True}, "backupHistoryLimit": 1},
    }


def appbinding(i: int) -> dict:
    return {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
            "metadata": {"name": f"db-{i:05d}", "namespace": "bench"},
            "spec": {"type": "kubedb.com/postgres", "version": "15",
                     "clientConfig": {"url": f"postgresql://db-{i:05d}.bench.svc:5432/app"}}}


def timed(fn):  # type: ignore[no-untyped-def]
    """(result, best of 3 wall seconds, peak Python heap bytes from a separate traced run)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, min(times), peak


def main() -> None:
    addons = builtin_addons()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp) / "state.db")
        t0 = time.perf_counter()
        with_status = []
        for obj in base_objects() + [appbinding(i) for i in range(N)] + [config(i) for i in range(N)]:
            with_status.append(obj)
        first = make_plan(cluster, manifests=with_status, addons=addons)
        apply_plan(cluster, first)
        setup = time.perf_counter() - t0
        now = datetime.now(UTC)
        # No change: the cluster (read from the store) already matches; plan without manifests.
        p, secs, peak = timed(lambda: make_plan(cluster, addons=addons, now=now))
        assert p.empty, p.counts()
        rows = [("no change", secs, peak, p.counts())]
        # 10% of the configurations get a new schedule (as edited manifests would say).
        changed = [copy.deepcopy(config(i, "30 4 * * *")) for i in range(0, N, 10)]
        p, secs, peak = timed(lambda: make_plan(cluster, manifests=changed, addons=addons, now=now))
        rows.append(("10% changed", secs, peak, p.counts()))
        cluster.close()
    print(f"planner benchmark: {N} BackupConfigurations (+ {N} CronJobs, {N} AppBindings) in the local store;"
          f" setup (first plan+apply) {setup:.1f}s")
    print(f"{'case':<14}{'seconds':>10}{'peak MiB (py heap)':>22}  plan")
    for name, secs, peak, counts in rows:
        print(f"{name:<14}{secs:>10.2f}{peak / 2**20:>22.1f}  {counts}")


if __name__ == "__main__":
    main()
