"""What every benchmark shares: interleaved repetitions (A B A B ...), medians with min-max, and goals
printed as a ratio with its target and PASS/MISS. Not a benchmark itself (make bench runs bench_*.py).

Whole processes are measured with os.wait4: wall seconds, CPU seconds (user + system) and peak RSS of
the process (for a shell pipeline: of its largest member, read from each child's rusage).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

REPS = int(os.environ.get("BENCH_REPS", "3"))


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float = 0.0  # user + system seconds
    rss: int = 0  # peak resident bytes
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def fmt(self, unit: str = "", digits: int = 2) -> str:
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def run_process(argv: Sequence[str], *, stdin: int | None = None, stdout: int | None = subprocess.DEVNULL,
                env: Mapping[str, str] | None = None, cwd: str | None = None, check: bool = True) -> Sample:
    """Run one process to its end: wall, CPU and peak RSS from its own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                            env=None if env is None else dict(env), cwd=cwd)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)


def run_shell(script: str, *, env: Mapping[str, str] | None = None) -> Sample:
    """A shell pipeline (`set -o pipefail`): wall, CPU of all its processes, and the largest peak RSS among
    them (wait4 reports the maximum over the shell and the descendants it waited for)."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", f"set -eo pipefail; {script}"], stderr=subprocess.PIPE,
                            env=None if env is None else dict(env))
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    after = os.times()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"pipeline failed ({code}): {script}\n{err.decode(errors='replace')[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Sample(wall, cpu, usage.ru_maxrss * 1024)


def interleave(cases: Mapping[str, Callable[[], Sample]], reps: int = REPS) -> dict[str, list[Sample]]:
    """Run the cases in turn, `reps` rounds (A B C A B C ...), so that load from elsewhere on the machine
    falls on every case alike."""
    out: dict[str, list[Sample]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, case in cases.items():
            out[name].append(case())
    return out


def walls(samples: Sequence[Sample]) -> Spread:
    return Spread.of([s.wall for s in samples])


def cpus(samples: Sequence[Sample]) -> Spread:
    return Spread.of([s.cpu for s in samples])


def ratio(num: Sequence[Sample], den: Sequence[Sample], key: Callable[[Sample], float] = lambda s: s.wall) -> Spread:
    """num/den of the medians, with the range of the per-round ratios (round i of each)."""
    med = statistics.median(key(s) for s in num) / statistics.median(key(s) for s in den)
    per = [key(a) / key(b) for a, b in zip(num, den, strict=False)]
    return Spread(med, min(per), max(per))


@dataclass
class Goals:
    """Goals checked by one benchmark; printed at its end, one line each."""

    lines: list[str] = field(default_factory=list)
    missed: int = 0

    def check(self, name: str, value: Spread, target: float, *, at_most: bool, unit: str = "x") -> None:
        ok = value.median <= target if at_most else value.median >= target
        self.missed += not ok
        sign = "<=" if at_most else ">="
        self.lines.append(f"  {'PASS' if ok else 'MISS'}  {name}: {value.fmt(unit)}  target {sign} {target:g}{unit}")

    def show(self) -> None:
        print("goals (median, min-max over interleaved rounds):")
        for line in self.lines:
            print(line)
