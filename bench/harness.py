"""What every benchmark shares: interleaved repetitions (A B A B ...), medians with min-max, and goals
printed as a ratio with its target and a verdict: PASS or MISS only when the whole min-max range of the rounds
is on one side of the target, "within noise" when it straddles it; each goal line carries the load average
(1 min) the rounds ran at. Not a benchmark itself (make bench runs bench_*.py).

Whole processes are measured with os.wait4 in a small launcher: wall seconds, CPU seconds (user + system)
and peak RSS (for a shell pipeline: of its largest member).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

REPS = max(3, int(os.environ.get("BENCH_REPS", "3")))  # a median and a range need at least 3 rounds


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


# Measured processes are started by this small interpreter, not forked from the benchmark: a child forked
# from a large process inherits its peak RSS into the rusage that wait4 reports.
_SHIM = """
import os, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
os.write(report, f"{ru.ru_maxrss} {ru.ru_utime + ru.ru_stime}".encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_process(argv: Sequence[str], *, stdin: int | None = None, stdout: int | None = subprocess.DEVNULL,
                env: Mapping[str, str] | None = None, cwd: str | None = None, check: bool = True) -> Sample:
    """Run one process (or a `bash -c` pipeline) to its end: wall seconds, CPU seconds of it and everything it
    waited for, and the largest peak RSS among them."""
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-S", "-c", _SHIM, str(write_fd), *argv], stdin=stdin, stdout=stdout,
                            stderr=subprocess.PIPE, env=None if env is None else dict(env), cwd=cwd,
                            pass_fds=(write_fd,))
    os.close(write_fd)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait()
    wall = time.perf_counter() - start
    with os.fdopen(read_fd, "rb") as fh:
        report = fh.read().split()
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    rss, cpu = (int(report[0]) * 1024, float(report[1])) if len(report) == 2 else (0, 0.0)
    return Sample(wall, cpu, rss)


def run_shell(script: str, *, env: Mapping[str, str] | None = None) -> Sample:
    """A shell pipeline (`set -o pipefail`), measured as run_process measures a process."""
    return run_process(["bash", "-c", f"set -eo pipefail; {script}"], env=env)


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


def verdict(value: Spread, target: float, *, at_most: bool) -> str:
    """PASS, MISS, or "within noise" when the min-max range of the rounds straddles the target."""
    best, worst = (value.low, value.high) if at_most else (value.high, value.low)
    met = (lambda v: v <= target) if at_most else (lambda v: v >= target)
    if met(worst):
        return "PASS"
    if not met(best):
        return "MISS"
    return "within noise"


@dataclass
class Goals:
    """Goals checked by one benchmark; printed at its end, one line each."""

    lines: list[str] = field(default_factory=list)
    missed: int = 0

    def check(self, name: str, value: Spread, target: float, *, at_most: bool, unit: str = "x",
              digits: int = 2) -> None:
        """PASS when every round met the target, MISS when none did, "within noise" when the range straddles it
        (the median alone would then say more than the machine measured)."""
        self.lines.append(f"  {verdict(value, target, at_most=at_most):<12}  {name}: {value.fmt(unit, digits)}  "
                          f"target {'<=' if at_most else '>='} {target:g}{unit}  (load {os.getloadavg()[0]:.1f})")
        self.missed += self.lines[-1].lstrip().startswith("MISS")

    def note(self, name: str, text: str) -> None:
        """A figure that explains a goal (printed with the goals, neither PASS nor MISS)."""
        self.lines.append(f"  info  {name}: {text}")

    def show(self) -> None:
        print("goals (median, min-max over interleaved rounds):")
        for line in self.lines:
            print(line)
