"""Transfer benchmark: the dump pipe and the restore pipe of PostgreSQL databases, stashplan next to pg_dump,
zstd and restic, in interleaved rounds (BENCH_REPS=3), medians with min-max.

Databases (created once, reused): `stashplan_bench` of BENCH_PG_MB (default 1024) MB of rows (an id, a
timestamp, a float and 96 hex characters) and `stashplan_pgbench`, `pgbench -i -s BENCH_PGBENCH_SCALE`
(default 50) at pgbench's defaults. Plain-format `pg_dump` throughout. Settings of every tool:
- stashplan default: `stashplan repo init` defaults (FastCDC 128 KiB / 512 KiB / 2 MiB, zstd level 1,
  4 MiB packs, AES-256-GCM), local directory, a fresh repository per round;
- stashplan equal: the same with restic's settings (FastCDC 512 KiB / 1 MiB / 8 MiB, zstd level 3);
- restic (the Debian/PATH binary; version printed): `backup --stdin`, compression auto (zstd "default",
  about level 3), 512 KiB-8 MiB chunks averaging 1 MiB, a fresh repository per round;
- restore: `stashplan repo restore latest | psql` into a fresh database vs `zstd -dc dump.zst | psql` (the
  same dump compressed with `zstd -1`); `stashplan repo restore latest > /dev/null` vs `restic dump latest`.
Goals (issue 13): pg_dump|stashplan >= 0.85x pg_dump>/dev/null (speed, default settings) with peak RSS
<= 100 MiB; at equal settings >= 1.5x pg_dump|restic; restore|psql within 1.05x of zstd -dc|psql;
restore to /dev/null >= 1.5x restic dump.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import blake3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import REPS, Goals, Sample, Spread, interleave, ratio, run_shell, walls  # noqa: E402

from providers.storage.local import LocalStorage  # noqa: E402
from stashplan.repository.layout import Params  # noqa: E402
from stashplan.repository.repo import Repository  # noqa: E402

PG = "-h 127.0.0.1 -p 5432 -U postgres"
PASSWORD = "bench-password"
STASHPLAN = shlex.quote(str(Path(sys.executable).parent / "stashplan"))
RESTIC = shutil.which("restic") or "/usr/bin/restic"
EQUAL = Params(chunk_min=512 * 1024, chunk_avg=1024 * 1024, chunk_max=8 * 1024 * 1024, zstd_level=3)


def psql(sql: str, db: str = "postgres") -> str:
    done = subprocess.run(f"psql {PG} -d {db} -XAtq -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}", shell=True,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def ensure_rows_database(db: str, target_mb: int) -> None:
    if psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'") == "0":
        psql(f"CREATE DATABASE {db}")
    if int(psql(f"SELECT pg_database_size('{db}')")) >= target_mb * 2**20 * 0.9:
        return
    print(f"creating a {target_mb} MB database {db} (once)...", flush=True)
    psql("DROP TABLE IF EXISTS rows", db)
    psql("CREATE TABLE rows(id bigint primary key, at timestamptz, n double precision, body text)", db)
    rows = target_mb * 2**20 // 160
    for start in range(1, rows + 1, 1_000_000):
        psql(f"INSERT INTO rows SELECT g, now() - g * interval '1 second', random(), md5(g::text) || "
             f"md5((g * 7)::text) || md5((g * 13)::text) FROM generate_series({start}, {min(rows, start + 999_999)}) g",
             db)
    psql("VACUUM ANALYZE rows", db)


def ensure_pgbench_database(db: str, scale: int) -> None:
    if psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'") == "1":
        try:
            if int(psql("SELECT count(*) FROM pgbench_branches", db)) == scale:
                return
        except subprocess.CalledProcessError:
            pass
        psql(f"DROP DATABASE {db}")
    print(f"creating pgbench database {db} at scale {scale} (once)...", flush=True)
    psql(f"CREATE DATABASE {db}")
    subprocess.run(f"pgbench {PG} -i -q -s {scale} {db}", shell=True, check=True, capture_output=True)


class Bench:
    """The cases of one database; repositories live under `work`."""

    def __init__(self, db: str, work: Path) -> None:
        self.db, self.work = db, work
        self.round = 0
        self.env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD, "RESTIC_PASSWORD": PASSWORD,
                    "RESTIC_CACHE_DIR": str(work / "restic-cache")}
        self.dump = f"pg_dump {PG} {db}"
        self.zst = work / "dump.sql.zst"
        subprocess.run(f"{self.dump} | zstd -1 -q -o {self.zst}", shell=True, check=True)
        self.dump_bytes = int(subprocess.run(f"zstd -dc {self.zst} | wc -c", shell=True, capture_output=True,
                                             text=True, check=True).stdout)

    def _fresh(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def pg_dump(self) -> Sample:
        """`pg_dump > /dev/null`, with the CPU seconds of the PostgreSQL backend that served it as
        extra["backend"] (see `backends_cpu`)."""
        before = backends_cpu()
        sample = run_shell(f"{self.dump} > /dev/null", env=self.env)
        time.sleep(0.5)  # the backend ends after pg_dump does, and the postmaster then collects its times
        return replace(sample, extra={"backend": backends_cpu() - before})

    def stashplan(self, params: Params, name: str) -> Callable[[], Sample]:
        """`pg_dump | stashplan repo backup`, with the CPU seconds of the backend that served this pipe's
        pg_dump as extra["backend"] (a backend feeding a pipe uses less CPU than one feeding /dev/null)."""
        def case() -> Sample:
            repo = self._fresh(name)
            Repository.init(LocalStorage(repo), PASSWORD, params)
            before = backends_cpu()
            sample = run_shell(f"{self.dump} | {STASHPLAN} repo backup --stdin --stdin-filename dump.sql "
                               f"--repo local:{repo} > /dev/null", env=self.env)
            time.sleep(0.5)  # the backend ends after pg_dump does, and the postmaster then collects its times
            return replace(sample, extra={"backend": backends_cpu() - before})
        return case

    def restic(self) -> Sample:
        repo = self._fresh("restic")
        subprocess.run([RESTIC, "-r", str(repo), "init", "-q"], env=self.env, check=True, capture_output=True)
        return run_shell(f"{self.dump} | {RESTIC} -r {repo} -q backup --stdin --stdin-filename dump.sql "
                         "--host bench", env=self.env)

    def _target(self) -> str:
        target = f"{self.db}_restored"
        psql(f"DROP DATABASE IF EXISTS {target}")
        psql(f"CREATE DATABASE {target}")
        return target

    def restore_psql(self) -> Sample:
        target = self._target()
        return run_shell(f"{STASHPLAN} repo restore latest --repo local:{self.work / 'default'} | "
                         f"psql {PG} -d {target} -Xq -v ON_ERROR_STOP=1 > /dev/null", env=self.env)

    def zstd_psql(self) -> Sample:
        target = self._target()
        return run_shell(f"zstd -dc {self.zst} | psql {PG} -d {target} -Xq -v ON_ERROR_STOP=1 > /dev/null",
                         env=self.env)

    def restore_null(self) -> Sample:
        return run_shell(f"{STASHPLAN} repo restore latest --repo local:{self.work / 'default'} > /dev/null",
                         env=self.env)

    def restic_dump(self) -> Sample:
        return run_shell(f"{RESTIC} -r {self.work / 'restic'} -q dump latest /dump.sql > /dev/null", env=self.env)


def speed(num: list[Sample], den: list[Sample]) -> Spread:
    """How many times faster `num` is than `den` (den wall / num wall), per round and of the medians."""
    r = ratio(den, num)
    return r


def backends_cpu() -> float:
    """CPU seconds of the PostgreSQL backends that have ended (the postmaster's children, collected by it)."""
    pid = Path(psql("SHOW data_directory"), "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime


def pipe_bound(alone: list[Sample], piped: list[Sample]) -> str:
    """The highest pg_dump|stashplan / pg_dump>/dev/null speed the CPUs allow, given what each part needs: the
    pipe cannot end before pg_dump alone does, nor before the CPUs have done the work of the backend, pg_dump
    and stashplan (on an otherwise idle machine). The backend's CPU is taken from the pipe runs themselves."""
    wall = statistics.median(s.wall for s in alone)
    backend = statistics.median(s.extra["backend"] for s in piped)
    dump = statistics.median(s.cpu for s in alone)
    stashplan = statistics.median(s.cpu for s in piped) - dump
    cores = len(os.sched_getaffinity(0))
    best = wall / max(wall, (backend + dump + stashplan) / cores)
    return (f"{best:.2f}x on {cores} idle CPUs, for the CPU-s each part takes: PostgreSQL backend "
            f"{backend:.1f}, pg_dump {dump:.1f}, stashplan {stashplan:.1f}")


def report(bench: Bench, goals: Goals) -> None:
    mib = bench.dump_bytes / 2**20
    backups = interleave({
        "pg_dump > /dev/null": bench.pg_dump,
        "pg_dump | stashplan (default)": bench.stashplan(Params(), "default"),
        "pg_dump | stashplan (equal)": bench.stashplan(EQUAL, "equal"),
        "pg_dump | restic": bench.restic,
    })
    restores = interleave({
        "zstd -dc | psql": bench.zstd_psql,
        "stashplan restore | psql": bench.restore_psql,
        "restic dump > /dev/null": bench.restic_dump,
        "stashplan restore > /dev/null": bench.restore_null,
    })
    print(f"\n{bench.db}: plain dump {mib:.0f} MiB; {REPS} interleaved rounds")
    print(f"  {'pipeline':<32}{'wall s median (min-max)':>26}{'MiB/s (median)':>16}{'CPU s':>8}{'peak RSS MiB':>14}")
    for name, runs in {**backups, **restores}.items():
        cpu = sorted(s.cpu for s in runs)[len(runs) // 2]
        print(f"  {name:<32}{walls(runs).fmt():>26}{mib / walls(runs).median:>16.0f}{cpu:>8.1f}"
              f"{max(s.rss for s in runs) / 2**20:>14.0f}")
    sizes = {name: sum(f.stat().st_size for f in (bench.work / name).rglob("*") if f.is_file())
             for name in ("default", "equal", "restic")}
    print("  repository size (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sizes.items()))
    goals.check(f"{bench.db}: pg_dump|stashplan speed / pg_dump>/dev/null",
                speed(backups["pg_dump | stashplan (default)"], backups["pg_dump > /dev/null"]), 0.85, at_most=False)
    goals.note(f"{bench.db}: best that ratio can be here", pipe_bound(backups["pg_dump > /dev/null"],
                                                                     backups["pg_dump | stashplan (default)"]))
    peak = max(s.rss for s in backups["pg_dump | stashplan (default)"]) / 2**20
    goals.check(f"{bench.db}: peak RSS of pg_dump|stashplan", Spread(peak, peak, peak), 100, at_most=True,
                unit=" MiB")
    goals.check(f"{bench.db}: equal settings, speed vs pg_dump|restic",
                speed(backups["pg_dump | stashplan (equal)"], backups["pg_dump | restic"]), 1.5, at_most=False)
    goals.check(f"{bench.db}: restore|psql time / zstd -dc|psql",
                ratio(restores["stashplan restore | psql"], restores["zstd -dc | psql"]), 1.05, at_most=True)
    goals.check(f"{bench.db}: restore>/dev/null speed vs restic dump",
                speed(restores["stashplan restore > /dev/null"], restores["restic dump > /dev/null"]), 1.5,
                at_most=False)


def hash_costs() -> None:
    """CPU seconds per GiB of the hashes a backup may run over every byte (one thread, 512 KiB chunks)."""
    key, chunk = os.urandom(32), os.urandom(512 * 1024)
    costs = {
        "HMAC-SHA256 (chunk ids, format 1)": lambda: hmac.digest(key, chunk, "sha256"),
        "SHA-256 (stream checksum, pack names)": lambda: hashlib.sha256(chunk).digest(),
        "keyed BLAKE3 (chunk ids, format 2)": lambda: blake3.blake3(chunk, key=key, max_threads=1).digest(),
    }
    print("hash costs, CPU s/GiB (best of 3 x 256 MiB):")
    for name, fn in costs.items():
        best = min(_cpu(fn, 512) for _ in range(3))
        print(f"  {name:<40}{best / (512 * len(chunk) / 2**30):>6.2f}")


def _cpu(fn: Callable[[], object], times: int) -> float:
    start = time.process_time()
    for _ in range(times):
        fn()
    return time.process_time() - start


def main() -> None:
    hash_costs()
    restic_version = subprocess.run([RESTIC, "version"], capture_output=True, text=True).stdout.strip()
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (other work on the machine slows every case, "
          "pg_dump>/dev/null least)")
    print(f"transfer benchmark; {restic_version}; {os.cpu_count()} CPUs; plain pg_dump "
          f"({subprocess.run(['pg_dump', '--version'], capture_output=True, text=True).stdout.strip()})")
    ensure_rows_database("stashplan_bench", int(os.environ.get("BENCH_PG_MB", "1024")))
    ensure_pgbench_database("stashplan_pgbench", int(os.environ.get("BENCH_PGBENCH_SCALE", "50")))
    goals = Goals()
    for db in ("stashplan_bench", "stashplan_pgbench"):
        with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
            report(Bench(db, Path(tmp)), goals)
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
