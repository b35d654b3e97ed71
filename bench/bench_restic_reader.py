"""Benchmark: reading a restic repository — `stashplan repo restore` vs `restic dump` of the same snapshot.

For each restic binary (Debian's, and the newer build in .cache/ when present) and repository version
(1 and 2), backs up a BENCH_RESTIC_MB (default 300) MB dump-like stream with `restic backup --stdin`, then
runs both readers to /dev/null, interleaved, BENCH_REPS (default 5) times after one warm-up each: the
`stashplan` command users run (`stashplan repo restore`) and `restic dump`. Prints throughput as median
(min-max) MB/s and peak RSS; target: stashplan >= restic dump, bounded RSS. The fixed cost of each run
(start-up, key derivation, reading snapshots and index) is shown by `snapshots` of the same repository.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import Goals, Spread, cpus, interleave, ratio, run_process

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out" / "restic-reader"
MB = int(os.environ.get("BENCH_RESTIC_MB", "300"))
REPEAT = int(os.environ.get("BENCH_REPS", "5"))
PASSWORD = "bench-password"  # throwaway repositories under bench-out/
NEWER = ROOT / ".cache" / "restic-0.18.1" / "restic"


def binaries() -> list[Path]:
    found = [Path(p) for p in (shutil.which("restic") or "/usr/bin/restic", NEWER) if Path(p).exists()]
    return found


def version(binary: Path) -> str:
    return subprocess.run(
        [str(binary), "version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]


def make_stream() -> Path:
    """A dump-like stream: lines of base64 text (compresses to ~75%, no duplicate chunks); cached."""
    path = OUT / f"stream-{MB}.sql"
    if path.exists() and path.stat().st_size == MB * 1_000_000:
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        left = MB * 1_000_000
        while left:
            block = base64.encodebytes(os.urandom(750_000))[:left]
            fh.write(block)
            left -= len(block)
    return path


def bench(binary: Path, repo_version: int, stream: Path, goals: Goals) -> None:
    repo = OUT / f"repo-{version(binary)}-v{repo_version}"
    env = {
        **os.environ,
        "RESTIC_PASSWORD": PASSWORD,
        "STASHPLAN_PASSWORD": PASSWORD,
        "RESTIC_CACHE_DIR": str(OUT / "cache"),
    }
    shutil.rmtree(repo, ignore_errors=True)
    base = [str(binary), "-r", str(repo), "--quiet"]
    subprocess.run([*base, "init", "--repository-version", str(repo_version)], check=True, env=env)
    with open(stream, "rb") as fh:
        subprocess.run(
            [*base, "backup", "--stdin", "--stdin-filename", "dumpfile.sql", "--host", "bench"],
            stdin=fh,
            check=True,
            env=env,
        )
    stashplan = [str(Path(sys.executable).parent / "stashplan"), "repo"]
    tools = {
        "restic dump": [*base, "dump", "latest", "/dumpfile.sql"],
        "stashplan": [*stashplan, "restore", "latest", "--repo", f"local:{repo}"],
    }
    fixed = {
        "restic snapshots": [*base, "snapshots"],
        "stashplan snapshots": [*stashplan, "snapshots", "--repo", f"local:{repo}"],
    }
    for argv in tools.values():
        run_process(argv, env=env)  # warm-up: restic fills its cache, both fill the page cache
    results = interleave(
        {name: (lambda a=argv: run_process(a, env=env)) for name, argv in tools.items()}, REPEAT
    )
    size = stream.stat().st_size
    for name, samples in results.items():
        rate = Spread.of([size / s.wall / 1e6 for s in samples])
        rss = max(s.rss for s in samples) / (1 << 20)
        print(
            f"  {name:<12} {rate.fmt(' MB/s', 1)}  cpu {cpus(samples).fmt(' s')}  peak RSS {rss:.1f} MiB",
            flush=True,
        )
    overhead = interleave({name: (lambda a=argv: run_process(a, env=env)) for name, argv in fixed.items()}, REPEAT)
    for name, samples in overhead.items():
        print(f"  {name:<20} fixed cost {Spread.of([s.wall for s in samples]).fmt(' s')}", flush=True)
    label = f"restic {version(binary)} v{repo_version}"
    goals.check(
        f"{label}: stashplan restore vs restic dump (speed)",
        ratio(results["restic dump"], results["stashplan"]),
        1.0,
        at_most=False,
    )
    goals.check(
        f"{label}: stashplan restore peak RSS",
        Spread.of([s.rss / (1 << 20) for s in results["stashplan"]]),
        100,
        at_most=True,
        unit=" MiB",
    )


def main() -> None:
    stream = make_stream()
    goals = Goals()
    print(f"restic repository reading: {MB} MB stream, {REPEAT} interleaved runs, median (min-max), peak RSS")
    for binary in binaries():
        for repo_version in (1, 2):
            print(f"restic {version(binary)}, repository version {repo_version}:", flush=True)
            bench(binary, repo_version, stream, goals)
    goals.show()


if __name__ == "__main__":
    main()
