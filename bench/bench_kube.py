"""Kube-mode benchmark: loop iterations over an informer cache (`stashplan.operator.incremental`) at two fleet
sizes, against the API emulator (tests/fixtures/kube.py) over real HTTP, one emulator per size.

Per size in BENCH_KUBE_CONFIGS (default "1000,10000"): N BackupConfigurations are created and the loop runs
until nothing changes (the setup). Then, interleaved over BENCH_REPS=3 rounds and both sizes: a no-change
iteration, and an iteration after one configuration's schedule was edited (its CronJob is updated). Also
one full resync (relist + full plan) per size, for reference: what every iteration cost before the
informer cache. API calls per iteration are counted by the
emulator (watch streams, which run in the background, are listed apart).
Goals: no-change iteration <= 0.2 s at every size; its cost at the largest size / smallest <= 1.5x; API
calls per iteration the same at every size.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import REPS, Goals, Sample, Spread, interleave, ratio, walls  # noqa: E402

from stashplan.api import builtin_addons  # noqa: E402
from stashplan.cluster.kube import KubeCluster  # noqa: E402
from stashplan.operator.incremental import INFORMED_KINDS, Incremental  # noqa: E402
from stashplan.operator.informer import Informer  # noqa: E402
from stashplan.operator.iteration import gc_paused  # noqa: E402
from tests.fixtures.kube import KubeAPI, running_emulator  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_KUBE_CONFIGS", "1000,10000").split(",")]
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
        cluster.create(config(i, f"{i % 60} * * * *"))


def config(i: int, schedule: str) -> dict:
    return {
        "kind": "BackupConfiguration",
        "metadata": {"name": f"db-{i:05d}", "namespace": NS},
        "spec": {"schedule": schedule, "task": {"name": "sqlite-backup-3"}, "repository": {"name": "repo"},
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                    "name": "db"}},
                 "retentionPolicy": {"name": "keep", "keepLast": 5, "prune": True}},
    }


class Fleet:
    """One emulator with N configurations and a converged loop state."""

    def __init__(self, api: KubeAPI, n: int) -> None:
        self.api, self.n = api, n
        self.cluster = KubeCluster(api.kubeconfig)
        self.addons = builtin_addons()
        start = time.perf_counter()
        seed(self.cluster, n)
        self.seeded = time.perf_counter() - start
        self.loop = Incremental(Informer(self.cluster, INFORMED_KINDS).start(), resync=1e9)
        start = time.perf_counter()
        for _ in range(10):  # create CronJobs and statuses until an iteration changes nothing
            if not self.iterate()[1].applied:
                break
        self.converge = time.perf_counter() - start
        self.settle()
        self.edits = 0

    def iterate(self):  # type: ignore[no-untyped-def]
        with gc_paused():
            return self.loop.run_once(addons=self.addons)

    def settle(self) -> None:
        """Let the watch deliver our own writes, and plan them away, until a quiet second passes."""
        while True:
            time.sleep(1.0)
            if not self.loop.informer.dirty.is_set():
                return
            self.iterate()

    def no_change(self) -> Sample:
        self.settle()
        self.api.reset_counters()
        start = time.perf_counter()
        plan, _ = self.iterate()
        wall = time.perf_counter() - start
        assert plan.empty, plan.counts()
        return Sample(wall, extra=self._calls())

    def one_edit(self) -> Sample:
        self.settle()
        self.edits += 1
        name = f"db-{self.n // 2:05d}"
        current = self.cluster.get("BackupConfiguration", NS, name)
        current["spec"]["schedule"] = f"{self.edits % 60} 4 * * *"
        self.cluster.replace(current)
        deadline = time.monotonic() + 30
        while not self.loop.informer.dirty.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.api.reset_counters()
        start = time.perf_counter()
        _plan, result = self.iterate()
        wall = time.perf_counter() - start
        assert [c.address for c in result.applied if c.kind == "CronJob"] == [f"CronJob/{NS}/stash-trigger-{name}"]
        return Sample(wall, extra=self._calls())

    def resync(self) -> Sample:
        self.settle()
        self.loop.resync = 0.0
        self.api.reset_counters()
        start = time.perf_counter()
        _plan, _ = self.iterate()
        wall = time.perf_counter() - start
        self.loop.resync = 1e9
        return Sample(wall, extra=self._calls())

    def _calls(self) -> dict[str, float]:
        return {verb: float(n) for verb, n in self.api.counts.items()}

    def close(self) -> None:
        self.loop.informer.close()
        self.cluster.close()


def calls(sample: Sample) -> str:
    requests = {k: int(v) for k, v in sample.extra.items() if k != "watch"}
    return f"{sum(requests.values())} ({', '.join(f'{k}={v}' for k, v in sorted(requests.items())) or '-'})"


def main() -> None:
    goals = Goals()
    print(f"kube-mode loop benchmark: informer cache + incremental plans, API emulator over HTTP; sizes {SIZES}, "
          f"{REPS} interleaved rounds")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        fleets = []
        for n in SIZES:
            (Path(tmp) / str(n)).mkdir()
            api = stack.enter_context(running_emulator(Path(tmp) / str(n)))
            fleets.append(Fleet(api, n))
            print(f"  N={n}: seeded in {fleets[-1].seeded:.1f}s, loop converged in {fleets[-1].converge:.1f}s")
        cases = {}
        for fleet in fleets:
            cases[f"no-change {fleet.n}"] = fleet.no_change
            cases[f"one edit {fleet.n}"] = fleet.one_edit
        samples = interleave(cases)
        resyncs = {fleet.n: fleet.resync() for fleet in fleets}
        print(f"  {'iteration':<22}{'wall s median (min-max)':>28}   API calls (first round; watch streams apart)")
        for name, runs in samples.items():
            print(f"  {name:<22}{walls(runs).fmt(digits=3):>28}   {calls(runs[0])}")
        for n, sample in resyncs.items():  # what every iteration cost before the informer (one list per kind)
            print(f"  {'full resync ' + str(n):<22}{sample.wall:>28.3f}   {calls(sample)}")
        for fleet in fleets:
            goals.check(f"N={fleet.n} no-change iteration", walls(samples[f"no-change {fleet.n}"]), 0.2,
                        at_most=True, unit=" s", digits=4)
        small, large = SIZES[0], SIZES[-1]
        goals.check(f"no-change iteration N={large} / N={small}",
                    ratio(samples[f"no-change {large}"], samples[f"no-change {small}"]), 1.5, at_most=True)
        goals.check(f"one-edit iteration N={large} / N={small}",
                    ratio(samples[f"one edit {large}"], samples[f"one edit {small}"]), 1.5, at_most=True)
        per_size = {calls(runs[0]) for name, runs in samples.items() if name.startswith("no-change")}
        spread = float(len(per_size))
        goals.check("distinct API-call counts of a no-change iteration across sizes", Spread(spread, spread, spread),
                    1, at_most=True, unit="")
        for fleet in fleets:
            fleet.close()
    goals.show()


if __name__ == "__main__":
    main()
