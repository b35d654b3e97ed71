"""Benchmark: reading a restic repository — `stashplan repo restore` vs `restic dump` of the same snapshot.

For each restic binary (Debian's, and the newer build in .cache/ when present) and repository version
(1 and 2), backs up a BENCH_RESTIC_MB (default 300) MB dump-like stream with `restic backup --stdin`, then
runs both readers to /dev/null, interleaved, BENCH_REPEAT (default 5) times after one warm-up each.
Prints throughput as median (min-max) MB/s and peak RSS; target: stashplan >= restic dump, bounded RSS.
"""

from __future__ import annotations

import base64
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out" / "restic-reader"
MB = int(os.environ.get("BENCH_RESTIC_MB", "300"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
PASSWORD = "bench-password"  # throwaway repositories under bench-out/
NEWER = ROOT / ".cache" / "restic-0.18.1" / "restic"


def binaries() -> list[Path]:
    found = [Path(p) for p in (shutil.which("restic") or "/usr/bin/restic", NEWER) if Path(p).exists()]
    return found


def version(binary: Path) -> str:
    return subprocess.run([str(binary), "version"], capture_output=True, text=True, check=True).stdout.split()[1]


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


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the child's peak RSS (MiB) of a command with stdout to /dev/null."""
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.PIPE, env={**os.environ, **env})
        assert proc.stderr is not None
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed: {err.decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def summary(size: int, runs: list[tuple[float, float]]) -> str:
    rates = [size / s / 1e6 for s, _rss in runs]
    rss = max(r for _s, r in runs)
    return f"{statistics.median(rates):7.1f} ({min(rates):.1f}-{max(rates):.1f}) MB/s  {rss:6.1f} MiB"


def bench(binary: Path, repo_version: int, stream: Path) -> tuple[float, float]:
    repo = OUT / f"repo-{version(binary)}-v{repo_version}"
    env = {"RESTIC_PASSWORD": PASSWORD, "STASHPLAN_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": str(OUT / "cache")}
    shutil.rmtree(repo, ignore_errors=True)
    base = [str(binary), "-r", str(repo), "--quiet"]
    subprocess.run([*base, "init", "--repository-version", str(repo_version)], check=True, env={**os.environ, **env})
    with open(stream, "rb") as fh:
        subprocess.run(
            [*base, "backup", "--stdin", "--stdin-filename", "dumpfile.sql", "--host", "bench"],
            stdin=fh,
            check=True,
            env={**os.environ, **env},
        )
    tools = {
        "restic dump": [*base, "dump", "latest", "/dumpfile.sql"],
        "stashplan": [sys.executable, "-m", "stashplan.repository.cli", "restore", "latest", "--repo", f"local:{repo}"],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}
    for argv in tools.values():
        run(argv, env)  # warm-up: restic fills its cache, both fill the page cache
    for _ in range(REPEAT):
        for name, argv in tools.items():
            results[name].append(run(argv, env))
    size = stream.stat().st_size
    for name, runs in results.items():
        print(f"  {name:<12} {summary(size, runs)}", flush=True)
    medians = {n: statistics.median(s for s, _r in runs) for n, runs in results.items()}
    return medians["restic dump"], medians["stashplan"]


def main() -> None:
    stream = make_stream()
    print(f"restic repository reading: {MB} MB stream, {REPEAT} interleaved runs, median (min-max), peak RSS")
    for binary in binaries():
        for repo_version in (1, 2):
            print(f"restic {version(binary)}, repository version {repo_version}:", flush=True)
            restic_s, ours_s = bench(binary, repo_version, stream)
            print(f"  stashplan vs restic dump: {restic_s / ours_s:.2f}x  (target >= 1)", flush=True)


if __name__ == "__main__":
    main()
