"""Benchmark: what the rolling read costs a backup (target: at most 5% of backup time at the default window).

A transfer reads, before each backup, the packs whose turn has come so that every pack is read at least once
per window (`repository/rolling.py`, 7 days by default). With a daily schedule that is about a seventh of the
repository per backup. Setup: a local repository holding the first dump of bench_repository's pair (BENCH_MB,
default 300 MB, cached in bench-out/), with the rolling read run on each of the 8 days before, as a daily
schedule leaves it. Each round, in turn, copies that repository and times, in this process (the key derivation
at open is not timed): the backup of the changed dump alone ("without"), and the rolling read due on the 9th day
followed by the same backup ("with"). Prints medians (min-max) over BENCH_REPS (>= 3) interleaved rounds.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_repository import OUT, PASSWORD, prepare_dumps
from harness import Goals, Sample, Spread, interleave, ratio, walls

from providers.storage import open_storage
from stashplan.repository import Repository
from stashplan.repository.rolling import DEFAULT_WINDOW

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
TODAY = T0 + 8 * DAY  # the ninth daily run


def base_repository(first: Path) -> Path:
    """A repository with the first dump and 8 days of daily rolling reads behind it (made once per run)."""
    path = OUT / "rolling-base"
    shutil.rmtree(path, ignore_errors=True)
    repo = Repository.open_or_init(open_storage(f"local:{path}"), PASSWORD)
    with open(first, "rb") as fh:
        repo.backup(fh, filename="dump.sql")
    for day in range(8):
        repo.read_rolling(T0 + day * DAY, DEFAULT_WINDOW)
    return path


def fresh_copy(base: Path) -> Repository:
    path = OUT / "rolling-run"
    shutil.rmtree(path, ignore_errors=True)
    shutil.copytree(base, path)
    return Repository.open(open_storage(f"local:{path}"), PASSWORD)


def case(base: Path, dump: Path, *, rolling: bool) -> Sample:
    repo = fresh_copy(base)
    start = time.perf_counter()
    read, packs = 0.0, (0, 0)
    if rolling:
        result = repo.read_rolling(TODAY, DEFAULT_WINDOW)
        read, packs = time.perf_counter() - start, (result.packs_read, result.packs_total)
    with open(dump, "rb") as fh:
        repo.backup(fh, filename="dump.sql")
    return Sample(time.perf_counter() - start, extra={"read": read, "packs_read": packs[0], "packs": packs[1]})


def main() -> None:
    first, second = prepare_dumps()
    print(f"stream {second.stat().st_size / 1e6:.0f} MB, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    base = base_repository(first)
    stored = sum(f.stat().st_size for f in (base / "data").rglob("*") if f.is_file())
    rounds = interleave(
        {
            "without": lambda: case(base, second, rolling=False),
            "with": lambda: case(base, second, rolling=True),
        }
    )
    with_, without = rounds["with"], rounds["without"]
    reads = Spread.of([s.extra["read"] for s in with_])
    share = Spread.of([s.extra["read"] / w.wall for s, w in zip(with_, without, strict=True)])
    sample = with_[0].extra
    print(f"backup without the rolling read: {walls(without).fmt('s')}")
    print(f"backup with the rolling read:    {walls(with_).fmt('s')}")
    print(
        f"rolling read alone: {reads.fmt('s')}, {sample['packs_read']:.0f} of {sample['packs']:.0f} packs "
        f"(repository data {stored / 1e6:.0f} MB, window {DEFAULT_WINDOW.days} days, daily schedule)"
    )
    goals = Goals()
    goals.check("rolling read / backup time", share, 0.05, at_most=True, digits=3)
    goals.note("with / without", ratio(with_, without).fmt("x", 3))
    goals.show()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    shutil.rmtree(OUT / "rolling-run", ignore_errors=True)


if __name__ == "__main__":
    main()
