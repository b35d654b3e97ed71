"""Planner benchmark: whole `stashplan` CLI processes over N BackupConfigurations + N AppBindings in YAML files,
against the floor of parsing those files with PyYAML's C loader (a `python` process that only parses them).

Cases, interleaved (floor, no-change plan, first apply; repeated BENCH_REPS=3 times) per size in
BENCH_PLANNER_SIZES (default "10000,50000"), local mode (the SQLite state file):
- floor: `python -c` loading every file with yaml.load_all(Loader=yaml.CSafeLoader);
- no-change plan: `stashplan plan -f DIR` against a state where everything is applied;
- first apply: `stashplan apply -f DIR --auto-approve` into an empty state (30,004 writes and 10,000 status
  updates at N=10,000), its output piped (the plan is printed as a summary by kind and namespace).
Goals: plan <= 2.5x floor, first apply <= 10x floor (wall time, median), peak RSS of each <= 600 MiB.
At N=50,000 the size takes about 12 minutes on this 2-core machine with BENCH_REPS=3 (the setup apply and three
first applies dominate); BENCH_PLANNER_SIZES=10000 skips it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Goals, Sample, Spread, cpus, interleave, ratio, run_process, walls

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
STASHPLAN = str(Path(PY).parent / "stashplan")
SIZES = [int(n) for n in os.environ.get("BENCH_PLANNER_SIZES", "10000,50000").split(",")]
FLOOR = ("import glob, sys, yaml\n"
         "for f in sorted(glob.glob(sys.argv[1] + '/*.yaml')):\n"
         "    list(yaml.load_all(open(f).read(), Loader=yaml.CSafeLoader))\n")


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


def write_manifests(folder: Path, n: int) -> None:
    """1,000 BackupConfigurations and their AppBindings per file, as a large repository of manifests."""
    folder.mkdir(parents=True)
    (folder / "base.yaml").write_text(yaml.safe_dump_all(base_objects(), sort_keys=False))
    for start in range(0, n, 1000):
        docs = [d for i in range(start, min(n, start + 1000)) for d in (appbinding(i), config(i))]
        (folder / f"db-{start:05d}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


def measure(n: int, tmp: Path, goals: Goals) -> None:
    started = time.monotonic()
    manifests = tmp / f"m{n}"
    write_manifests(manifests, n)
    applied = tmp / f"applied-{n}" / "state.db"
    first = run_process([STASHPLAN, "apply", "-f", str(manifests), "--state", str(applied), "--auto-approve"])
    rounds = iter(range(1_000_000))

    def first_apply() -> Sample:
        state = tmp / f"fresh-{n}-{next(rounds)}"
        with open(tmp / "apply.out", "wb") as out:
            sample = run_process([STASHPLAN, "apply", "-f", str(manifests), "--state", str(state / "state.db"),
                                  "--auto-approve"], stdout=out.fileno())
        shutil.rmtree(state)
        return sample

    samples = interleave({
        "floor": lambda: run_process([PY, "-c", FLOOR, str(manifests)]),
        "plan": lambda: run_process([STASHPLAN, "plan", "-f", str(manifests), "--state", str(applied),
                                     "--detailed-exitcode"]),
        "apply": first_apply,
    })
    lines = len((tmp / "apply.out").read_text().splitlines())
    print(f"\n{n} BackupConfigurations + {n} AppBindings ({sum(f.stat().st_size for f in manifests.iterdir()) >> 20}"
          f" MiB of YAML in {len(list(manifests.iterdir()))} files); setup apply {first.wall:.1f}s")
    print(f"  {'case':<16}{'wall s median (min-max)':>28}{'CPU s median (min-max)':>28}{'peak RSS MiB':>14}")
    for name, runs in samples.items():
        print(f"  {name:<16}{walls(runs).fmt():>28}{cpus(runs).fmt():>28}{max(s.rss for s in runs) / 2**20:>14.0f}")
    print(f"  first apply printed {lines} lines")
    cpu = ratio(samples["plan"], samples["floor"], key=lambda s: s.cpu)
    print(f"  no-change plan / floor in CPU seconds (not a goal; steadier on a loaded machine): {cpu.fmt('x')}")
    goals.check(f"N={n} no-change plan / floor (wall)", ratio(samples["plan"], samples["floor"]), 2.5, at_most=True)
    goals.check(f"N={n} first apply / floor (wall)", ratio(samples["apply"], samples["floor"]), 10, at_most=True)
    for case, what in (("plan", "no-change plan"), ("apply", "first apply")):
        peak = max(s.rss for s in samples[case]) / 2**20
        goals.check(f"N={n} peak RSS of the {what}", Spread(peak, peak, peak), 600, at_most=True, unit=" MiB")
    print(f"  (N={n} took {time.monotonic() - started:.0f} s in all)")


def main() -> None:
    goals = Goals()
    print(f"planner benchmark: whole CLI processes, local mode, interleaved rounds; sizes {SIZES}; "
          f"python {sys.version.split()[0]}, PyYAML {yaml.__version__} (C loader: {yaml.__with_libyaml__})")
    with tempfile.TemporaryDirectory(dir=ROOT / ".cache" if (ROOT / ".cache").is_dir() else None) as tmp:
        for n in SIZES:
            measure(n, Path(tmp), goals)
    goals.show()


if __name__ == "__main__":
    main()
