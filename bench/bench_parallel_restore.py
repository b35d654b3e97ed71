"""Parallel logical restore benchmark (issue 26, item 1): `stashplan repo restore latest | psql` (serial, as
today) against `... | stashplan transfer pg-restore --jobs N` for N = 1 and 2, into a fresh database each
time, in interleaved rounds (BENCH_REPS=3), medians with min-max and the load average.

Databases as bench_transfer.py makes them (created once, reused): `stashplan_bench`, BENCH_PG_MB (default
1024) MB of rows with a primary key, and `stashplan_pgbench`, `pgbench -i -s BENCH_PGBENCH_SCALE` (default
50). Plain `pg_dump`, backed up once into a stashplan repository (default settings). The time is until
the database is usable: data loaded, indexes and constraints built. Goal: --jobs 2 >= 1.4x serial psql. The
ceiling printed beside it is what the CPUs allow: serial wall / (CPU-s of the serial restore / cores); "own
bound" is the same for the work --jobs 2 itself did (its client processes and the backends that served it), so
a ratio above it cannot be reached on these CPUs without doing less work.

MariaDB: `stashplan_bench_my`, 4 sysbench-like tables of BENCH_MY_MB (default 128) MB of `mariadb-dump` in all;
`restore | mariadb` against the confined restore a RestoreSession runs (its account and filter) at --jobs 1 and 2
(bench/mysql_restore_driver.py). BENCH_RESTORE_DBS picks the databases; BENCH_BASELINE=<checkout> adds its
PostgreSQL --jobs 2 to the interleaved rounds (before/after under the same load).
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_transfer import (  # noqa: E402
    PASSWORD,
    PG,
    STASHPLAN,
    backends_cpu,
    ensure_pgbench_database,
    ensure_rows_database,
    psql,
)
from harness import Goals, Sample, interleave, ratio, run_shell, walls  # noqa: E402

from providers.storage.local import LocalStorage  # noqa: E402
from stashplan.repository.layout import Params  # noqa: E402
from stashplan.repository.repo import Repository  # noqa: E402

JOBS = (1, 2)


class Restores:
    """The restore cases of one database; its dump is backed up once into a repository under `work`."""

    def __init__(self, db: str, work: Path) -> None:
        self.db, self.repo = db, work / "repo"
        self.env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD}
        Repository.init(LocalStorage(self.repo), PASSWORD, Params())
        run_shell(f"pg_dump {PG} {db} | {STASHPLAN} repo backup --stdin --stdin-filename dump.sql "
                  f"--repo local:{self.repo} > /dev/null", env=self.env)
        self.source = f"{STASHPLAN} repo restore latest --repo local:{self.repo}"
        self.target = f"{db}_prestored"

    def _fresh(self) -> None:
        psql(f"DROP DATABASE IF EXISTS {self.target} WITH (FORCE)")
        psql(f"CREATE DATABASE {self.target}")

    def serial(self) -> Sample:
        """`restore | psql`, with the CPU seconds of the backends that served it as extra["backend"] (all backends
        that ended meanwhile: other work on the shared server counts too, so it is an upper bound)."""
        self._fresh()
        before = backends_cpu()
        sample = run_shell(f"{self.source} | psql {PG} -d {self.target} -Xq -v ON_ERROR_STOP=1 > /dev/null",
                           env=self.env)
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.target}'")
        time.sleep(0.5)  # the postmaster collects an ended backend's times
        return replace(sample, extra={"backend": backends_cpu() - before})

    def parallel(self, jobs: int, checkout: str = "") -> Callable[[], Sample]:
        """`--jobs N` of this checkout, or of another (BENCH_BASELINE: its path, put first on PYTHONPATH)."""
        env = {**self.env, "PYTHONPATH": checkout} if checkout else self.env

        def case() -> Sample:
            self._fresh()
            before = backends_cpu()
            sample = run_shell(f"{self.source} | {STASHPLAN} transfer pg-restore {PG} -d {self.target} "
                               f"--jobs {jobs}", env=env)
            time.sleep(0.5)  # its connections have ended (finish waits for every psql): their times are collected
            return replace(sample, extra={"backend": backends_cpu() - before})
        return case

    def rows(self) -> str:
        """What the last restore left: the rows and indexes of its tables (a restore that did nothing is no win)."""
        return psql("SELECT sum(n_live_tup) || ' rows, ' || (SELECT count(*) FROM pg_indexes WHERE schemaname = "
                    "'public') || ' indexes' FROM pg_stat_user_tables", self.target)

    def drop(self) -> None:
        psql(f"DROP DATABASE IF EXISTS {self.target} WITH (FORCE)")


MY = "-h127.0.0.1 -uroot"
MY_TABLES = 4


def mariadb(sql: str, db: str = "") -> str:
    return subprocess.run(f"mariadb {MY} -N --batch {db} -e {shlex.quote(sql)}", shell=True, check=True,
                          capture_output=True, text=True).stdout.strip()


def ensure_mysql_database(db: str, target_mb: int) -> None:
    """MY_TABLES sysbench-like tables (id, k with a secondary index, c, pad) of target_mb MB of dump in all."""
    rows = target_mb * 2**20 // MY_TABLES // 200
    mariadb(f"CREATE DATABASE IF NOT EXISTS {db}")
    tables = mariadb(f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{db}'")
    if tables == str(MY_TABLES) and mariadb(f"SELECT max(id) FROM t{MY_TABLES}", db) == str(rows):
        return
    print(f"creating a {target_mb} MB MariaDB database {db} (once)...", flush=True)
    for i in range(1, MY_TABLES + 1):
        mariadb(f"DROP TABLE IF EXISTS t{i}; CREATE TABLE t{i} (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120), "
                f"pad CHAR(60), KEY k (k)); INSERT INTO t{i} SELECT seq, FLOOR(RAND() * {rows}), "
                f"CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2), LEFT(MD5(seq + 3), 24)), CONCAT(MD5(-seq), "
                f"LEFT(MD5(seq * 7), 28)) FROM seq_1_to_{rows}", db)


class MyRestores:
    """The MariaDB cases: `restore | mariadb` (unconfined, serial), and the confined restore that
    `transfer restore` runs into a named database (its account and filter) at --jobs 1 and 2."""

    def __init__(self, db: str, work: Path) -> None:
        self.db, self.repo = db, work / "repo"
        self.env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD}
        Repository.init(LocalStorage(self.repo), PASSWORD, Params())
        run_shell(f"mariadb-dump {MY} {db} | {STASHPLAN} repo backup --stdin --stdin-filename dump.sql "
                  f"--repo local:{self.repo} > /dev/null", env=self.env)
        self.source = f"{STASHPLAN} repo restore latest --repo local:{self.repo}"
        self.target = f"{db}_prestored"

    def _fresh(self) -> None:
        mariadb(f"DROP DATABASE IF EXISTS {self.target}; CREATE DATABASE {self.target}")

    def serial(self) -> Sample:
        self._fresh()
        return run_shell(f"{self.source} | mariadb {MY} --binary-mode {self.target}", env=self.env)

    def parallel(self, jobs: int) -> Callable[[], Sample]:
        def case() -> Sample:
            self._fresh()
            return run_shell(f"{self.source} | {sys.executable} {ROOT}/bench/mysql_restore_driver.py "
                             f"{self.target} {jobs}", env=self.env)
        return case

    def rows(self) -> str:
        return mariadb(f"SELECT sum(table_rows) FROM information_schema.tables WHERE table_schema = "
                       f"'{self.target}'") + " rows (estimate)"

    def drop(self) -> None:
        mariadb(f"DROP DATABASE IF EXISTS {self.target}")


def report_mysql(r: MyRestores, goals: Goals) -> None:
    cases: dict[str, Callable[[], Sample]] = {"restore | mariadb": r.serial}
    cases |= {f"--jobs {j}": r.parallel(j) for j in JOBS}
    runs = interleave(cases)
    print(f"\n{r.db} ({MY_TABLES} tables): restore until usable (wall s, median (min-max)); restored: {r.rows()}")
    for name, samples in runs.items():
        cpu = sorted(s.cpu for s in samples)[len(samples) // 2]
        print(f"  {name:<18} {walls(samples).fmt('s')}  client CPU {cpu:.1f}s")
    for j in JOBS:
        goals.note(f"{r.db}: --jobs {j} vs restore | mariadb", ratio(runs["restore | mariadb"],
                                                                    runs[f"--jobs {j}"]).fmt("x"))
    goals.note(f"{r.db}: --jobs 2 vs --jobs 1", ratio(runs["--jobs 1"], runs["--jobs 2"]).fmt("x"))
    r.drop()


def report(r: Restores, goals: Goals) -> None:
    cases: dict[str, Callable[[], Sample]] = {"restore | psql": r.serial}
    cases |= {f"--jobs {j}": r.parallel(j) for j in JOBS}
    if baseline := os.environ.get("BENCH_BASELINE", ""):
        cases[f"--jobs {max(JOBS)} baseline"] = r.parallel(max(JOBS), baseline)
    runs = interleave(cases)
    print(f"\n{r.db}: restore until usable (wall s, median (min-max)); restored: {r.rows()}")
    for name, samples in runs.items():
        cpu = sorted(s.cpu for s in samples)[len(samples) // 2]
        print(f"  {name:<16} {walls(samples).fmt('s')}  client CPU {cpu:.1f}s")
    serial = runs["restore | psql"]
    work = statistics.median(s.cpu + s.extra["backend"] for s in serial)
    wall = statistics.median(s.wall for s in serial)
    cores = len(os.sched_getaffinity(0))
    goals.note(f"{r.db}: ceiling", f"{wall / max(wall / cores, work / cores):.2f}x on {cores} idle CPUs: serial "
               f"restore | psql keeps {work / wall:.2f} CPUs busy ({work:.1f} CPU-s client + backends in {wall:.1f} s)")
    top = runs[f"--jobs {max(JOBS)}"]
    work_n = statistics.median(s.cpu + s.extra["backend"] for s in top)
    goals.note(f"{r.db}: --jobs {max(JOBS)}'s own bound", f"{wall / (work_n / cores):.2f}x: its work, "
               f"{work_n:.1f} CPU-s (client {statistics.median(s.cpu for s in top):.1f} + backends "
               f"{statistics.median(s.extra['backend'] for s in top):.1f}), takes {work_n / cores:.2f} s on "
               f"{cores} CPUs at the very least")
    for j in JOBS:
        speedup = ratio(runs["restore | psql"], runs[f"--jobs {j}"])
        if j == max(JOBS):
            goals.check(f"{r.db}: --jobs {j} vs restore | psql", speedup, 1.4, at_most=False)
        else:
            goals.note(f"{r.db}: --jobs {j} vs restore | psql", speedup.fmt("x"))
    if baseline:
        goals.note(f"{r.db}: baseline --jobs {max(JOBS)} vs restore | psql",
                   ratio(runs["restore | psql"], runs[f"--jobs {max(JOBS)} baseline"]).fmt("x"))
    r.drop()


def main() -> None:
    print(f"parallel restore benchmark; {os.cpu_count()} CPUs; load average at the start {os.getloadavg()[0]:.2f}; "
          f"{subprocess.run(['psql', '--version'], capture_output=True, text=True).stdout.strip()}")
    dbs = os.environ.get("BENCH_RESTORE_DBS", "stashplan_bench stashplan_pgbench stashplan_bench_my").split()
    if "stashplan_bench" in dbs:  # only the databases asked for are made (or remade at another size)
        ensure_rows_database("stashplan_bench", int(os.environ.get("BENCH_PG_MB", "1024")))
    if "stashplan_pgbench" in dbs:
        ensure_pgbench_database("stashplan_pgbench", int(os.environ.get("BENCH_PGBENCH_SCALE", "50")))
    if "stashplan_bench_my" in dbs:
        ensure_mysql_database("stashplan_bench_my", int(os.environ.get("BENCH_MY_MB", "128")))
    goals = Goals()
    for db in dbs:
        with tempfile.TemporaryDirectory(prefix="bench-prestore-") as tmp:
            if db == "stashplan_bench_my":
                report_mysql(MyRestores(db, Path(tmp)), goals)
            else:
                report(Restores(db, Path(tmp)), goals)
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

