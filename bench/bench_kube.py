"""Kube-mode benchmark: one no-change loop iteration (`stashplan.reconcile.loop.run_once`) through KubeCluster.

N BackupConfigurations (and the trigger CronJobs the loop creates for them) live in the test API
emulator (tests/fixtures/kube.py) over real HTTP. Reports API calls per verb and wall time.
Env: BENCH_KUBE_CONFIGS (default "100,1000"). Target: calls independent of N, under 2 s at 1,000.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stashplan.api import builtin_addons
from stashplan.cluster.kube import KubeCluster
from stashplan.reconcile.loop import run_once
from tests.fixtures.kube import KubeAPI, running_emulator

SIZES = [int(n) for n in os.environ.get("BENCH_KUBE_CONFIGS", "100,1000").split(",")]
NS = "bench"


def seed(cluster: KubeCluster, n: int) -> None:
    cluster.create({"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": NS},
                    "stringData": {"RESTIC_PASSWORD": "bench"}})  # fmt: skip
    cluster.create({"kind": "Repository", "metadata": {"name": "repo", "namespace": NS},
                    "spec": {"backend": {"local": {"mountPath": "/tmp/bench-repo"},
                                         "storageSecretName": "repo-secret"}}})  # fmt: skip
    cluster.create({"kind": "AppBinding", "metadata": {"name": "db", "namespace": NS},
                    "spec": {"type": "stashplan.dev/sqlite", "version": "3",
                             "clientConfig": {"url": "sqlite:////tmp/bench.db"}}})  # fmt: skip
    for i in range(n):
        cluster.create({
            "kind": "BackupConfiguration",
            "metadata": {"name": f"db-{i:05d}", "namespace": NS},
            "spec": {"schedule": f"{i % 60} * * * *", "task": {"name": "sqlite-backup-3"},
                     "repository": {"name": "repo"},
                     "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1",
                                        "kind": "AppBinding", "name": "db"}},
                     "retentionPolicy": {"name": "keep", "keepLast": 5, "prune": True}},
        })  # fmt: skip


def measure(api: KubeAPI, n: int) -> tuple[int, dict[str, int], float, float, int]:
    api.emulator.reset()
    cluster = KubeCluster(api.kubeconfig)
    addons = builtin_addons()
    seed(cluster, n)
    converge_start = time.perf_counter()
    for _ in range(5):  # create the CronJobs and statuses until a pass changes nothing
        if not run_once(cluster, addons=addons).changed:
            break
    converge = time.perf_counter() - converge_start
    api.reset_counters()
    start = time.perf_counter()
    it = run_once(cluster, addons=addons)
    wall = time.perf_counter() - start
    counts = api.counts
    cluster.close()
    return n, counts, wall, converge, len(it.result.applied)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, running_emulator(Path(tmp)) as api:
        print(f"{'configs':>8} {'API calls':>10} {'by verb':<28} {'no-change iteration':>20} "
              f"{'first apply':>12} {'changes':>8}")  # fmt: skip
        for n in SIZES:
            n, counts, wall, converge, changes = measure(api, n)
            verbs = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            print(
                f"{n:>8} {sum(counts.values()):>10} {verbs:<28} {wall:>19.3f}s {converge:>11.2f}s {changes:>8}"
            )


if __name__ == "__main__":
    main()
