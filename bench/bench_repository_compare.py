"""Benchmark: backup throughput of this tree against another revision (BENCH_COMPARE=<git rev>), interleaved.

Uses the repository bench's pg_dump pair (BENCH_MB, cached in bench-out/). Per round, in alternating
order, each tree gets a fresh local repository and times `Repository.backup` of the first dump, then of
the changed dump (deduplicated against the first; this is where the pack-existence check works), in a
fresh process (the key derivation at open is not timed). Prints medians with min-max over
BENCH_REPEAT (default 5) rounds. Without BENCH_COMPARE it prints how to run and exits.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_repository import OUT, PASSWORD, ROOT, prepare_dumps

REV = os.environ.get("BENCH_COMPARE", "")
ROUNDS = int(os.environ.get("BENCH_REPEAT", "5"))
DRIVER = """
import sys, time
from providers.storage import open_storage
from stashplan.repository import Repository
repo = Repository.open_or_init(open_storage(sys.argv[1]), sys.argv[2])
with open(sys.argv[3], "rb") as fh:
    start = time.perf_counter()
    repo.backup(fh, filename="dump.sql")
    print(time.perf_counter() - start)
"""


def tree_of(rev: str) -> Path:
    """A detached worktree of `rev` under bench-out/ (made once)."""
    path = OUT / f"compare-{rev[:12]}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True)
    return path


def timed_backup(tree: Path, url: str, dump: Path) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, url, PASSWORD, str(dump)],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"backup with {tree} failed: {proc.stderr[-800:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def summary(rates: list[float]) -> str:
    return f"{statistics.median(rates):7.1f} MB/s (min {min(rates):.1f}, max {max(rates):.1f})"


def main() -> None:
    if not REV:
        print("set BENCH_COMPARE=<git rev> to compare backup throughput with that revision; skipped")
        return
    first, second = prepare_dumps()
    trees = {"before": tree_of(REV), "after": ROOT}
    rates: dict[str, dict[str, list[float]]] = {k: {"first": [], "second": []} for k in trees}
    for n in range(ROUNDS):
        order = list(trees) if n % 2 == 0 else list(reversed(trees))
        for label in order:
            repo = OUT / f"compare-repo-{label}"
            shutil.rmtree(repo, ignore_errors=True)
            url = f"local:{repo}"
            rates[label]["first"].append(first.stat().st_size / timed_backup(trees[label], url, first) / 1e6)
            rates[label]["second"].append(second.stat().st_size / timed_backup(trees[label], url, second) / 1e6)
        print(f"round {n + 1}/{ROUNDS} done", flush=True)
    print(f"\nbackup throughput, {ROUNDS} interleaved rounds, dump {first.stat().st_size / 1e6:.0f} MB")
    print(f"  before = {REV}, after = this tree")
    for label in trees:
        print(f"  {label:<6} 1st backup {summary(rates[label]['first'])}   "
              f"2nd (dedup) {summary(rates[label]['second'])}")  # fmt: skip


if __name__ == "__main__":
    main()
