"""Benchmark: what the rolling read costs a backup (target: at most 5% of backup time at the default window).

A transfer reads, before each backup, the packs whose turn has come so that every pack is read at least once
per window (`repository/rolling.py`, 7 days by default). With a daily schedule that is about a seventh of the
repository per backup. Setup: a local repository holding the first dump of bench_repository's pair (BENCH_MB,
default 300 MB, cached in bench-out/), with the rolling read run on each of the 8 days before, as a daily
schedule leaves it. Each round, in turn, copies that repository and times, in this process (the key derivation
at open is not timed): the backup of the changed dump alone ("without"); the rolling read due that day (the 9th,
10th, ... day, round by round) followed by the same backup ("with"); and the rolling reads of 7 successive days
("week", which reads every pack once). The goal is a week's reads / 7 against the backup's time; which packs
fall due on one day depends on their ids, so one day's read alone says little. Medians (min-max) over
BENCH_REPS (>= 3) interleaved rounds.
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


def case(base: Path, dump: Path, *, rolling: bool, day: int = 8) -> Sample:
    repo = fresh_copy(base)
    for earlier in range(8, day):  # the days before, untimed: the state a daily schedule leaves on `day`
        repo.read_rolling(T0 + earlier * DAY, DEFAULT_WINDOW)
    start = time.perf_counter()
    read, packs = 0.0, 0
    if rolling:
        packs = repo.read_rolling(T0 + day * DAY, DEFAULT_WINDOW).packs_read
        read = time.perf_counter() - start
    with open(dump, "rb") as fh:
        repo.backup(fh, filename="dump.sql")
    return Sample(time.perf_counter() - start, extra={"read": read, "packs_read": packs})


def week(base: Path) -> Sample:
    """The rolling reads of the next 7 daily runs, in turn on one copy: every pack is read once in them."""
    repo = fresh_copy(base)
    each, packs = [], 0
    for day in range(8, 15):
        start = time.perf_counter()
        packs += repo.read_rolling(T0 + day * DAY, DEFAULT_WINDOW).packs_read
        each.append(time.perf_counter() - start)
    return Sample(sum(each), extra={"max": max(each), "packs_read": packs, "packs": len(repo.stored_packs())})


def main() -> None:
    first, second = prepare_dumps()
    print(f"stream {second.stat().st_size / 1e6:.0f} MB, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    base = base_repository(first)
    stored = sum(f.stat().st_size for f in (base / "data").rglob("*") if f.is_file())
    days = iter(range(8, 1000))
    rounds = interleave(
        {
            "without": lambda: case(base, second, rolling=False),
            "with": lambda: case(base, second, rolling=True, day=8 + (next(days) - 8) % 7),
            "week": lambda: week(base),
        }
    )
    with_, without, weeks = rounds["with"], rounds["without"], rounds["week"]
    mean_share = Spread.of([w.wall / 7 / b.wall for w, b in zip(weeks, without, strict=True)])
    worst_share = Spread.of([w.extra["max"] / b.wall for w, b in zip(weeks, without, strict=True)])
    print(f"backup without the rolling read: {walls(without).fmt('s')}")
    print(
        f"backup with the rolling read of that day: {walls(with_).fmt('s')} "
        f"of which the read {Spread.of([s.extra['read'] for s in with_]).fmt('s', 3)} "
        f"(packs read per round: {', '.join(str(int(s.extra['packs_read'])) for s in with_)})"
    )
    print(
        f"a week of daily rolling reads: {walls(weeks).fmt('s')} in all, the longest day "
        f"{Spread.of([w.extra['max'] for w in weeks]).fmt('s')}; {weeks[0].extra['packs_read']:.0f} pack reads of "
        f"{weeks[0].extra['packs']:.0f} packs (repository data {stored / 1e6:.0f} MB, window {DEFAULT_WINDOW.days} days)"
    )
    goals = Goals()
    goals.check("rolling read per daily backup (a week's reads / 7) / backup time", mean_share, 0.05, at_most=True,
                digits=3)
    goals.note("the longest day's read / backup time", worst_share.fmt("x", 3))
    goals.note("with / without (that day's read)", ratio(with_, without).fmt("x", 3))
    goals.show()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    shutil.rmtree(OUT / "rolling-run", ignore_errors=True)


if __name__ == "__main__":
    main()
