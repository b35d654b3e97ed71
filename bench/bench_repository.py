"""Benchmark: stashplan's repository vs `restic backup --stdin` on the same pg_dump of a generated database.

Creates a PostgreSQL database of about BENCH_MB (default 300) MB of realistic rows, dumps it once to
bench-out/ (cached), applies a ~1% change (appended rows + a contiguous range of updated rows) and dumps
again. Then, per tool (median of BENCH_REPEAT=2 runs, one tool after the other: the interleaved goals are
bench_transfer.py's): backup throughput, peak RSS, repository bytes after the first snapshot, bytes added
by the second, restore throughput; and `pg_dump > /dev/null` throughput. Prints a table. Settings:
stashplan's `repo init` defaults (FastCDC 128 KiB/512 KiB/2 MiB, zstd 1), restic's (zstd auto, 1 MiB).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out"
MB = int(os.environ.get("BENCH_MB", "300"))
PG = ["-h", "127.0.0.1", "-U", "postgres"]
DB = f"stashplan_bench_{MB}"
PASSWORD = "bench-password"  # throwaway repositories under bench-out/
RESTIC = shutil.which("restic") or "/usr/bin/restic"
BYTES_PER_ROW = 90
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))

CREATE = """
DROP TABLE IF EXISTS orders, customers;
CREATE TABLE customers (id int PRIMARY KEY, name text, email text, city text, created_at timestamptz);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text, amount numeric(12,2),
                     created_at timestamptz, note text);
INSERT INTO customers
  SELECT g, 'customer ' || md5(g::text), 'user' || g || '@example.' || (ARRAY['com','org','net'])[1 + g % 3],
         (ARRAY['Berlin','Paris','Lagos','Lima','Osaka','Toronto','Cairo','Perth'])[1 + (g * 7) % 8],
         timestamptz '2020-01-01' + (g || ' minutes')::interval
  FROM generate_series(1, {customers}) g;
"""
ORDERS = """
INSERT INTO orders
  SELECT g, 1 + (g * 7919) % {customers},
         (ARRAY['new','paid','shipped','delivered','returned','cancelled'])[1 + (g * 31) % 6],
         round((random() * 1000)::numeric, 2),
         timestamptz '2021-01-01' + (g * 13 || ' seconds')::interval,
         (ARRAY['fragile','gift','express','priority','bulk','standard','insured','signature',
                'weekend','return','discount','loyalty','coupon','late','early'])[1 + (g * 3) % 15]
           || ' ' || substr(md5(g::text || 'x'), 1, (1 + g % 24)::int)
           || ' ' || (ARRAY['leave at door','call before delivery','office hours only','',
                            'back entrance','deliver to neighbour','no plastic'])[1 + (g * 11) % 7]
  FROM generate_series({start}::bigint, {stop}::bigint) g;
"""


def psql(sql: str, db: str = "postgres") -> str:
    proc = subprocess.run(
        ["psql", *PG, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"psql failed: {proc.stderr.strip()}")
    return proc.stdout


def prepare_dumps() -> tuple[Path, Path]:
    """The two cached dumps (before/after the 1% change); regenerates the database when needed."""
    OUT.mkdir(exist_ok=True)
    first, second = OUT / f"dump-{MB}-a.sql", OUT / f"dump-{MB}-b.sql"
    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB}'").strip() == "1"
    if first.exists() and second.exists() and exists:
        return first, second
    rows = MB * 1_000_000 // BYTES_PER_ROW
    customers = max(1000, rows // 20)
    print(f"generating database {DB}: {rows} orders, {customers} customers ...", flush=True)
    psql(f"DROP DATABASE IF EXISTS {DB}")
    psql(f"CREATE DATABASE {DB}")
    psql(CREATE.format(customers=customers), DB)
    step = 500_000
    for start in range(1, rows + 1, step):
        psql(ORDERS.format(customers=customers, start=start, stop=min(rows, start + step - 1)), DB)
    with open(first, "wb") as fh:
        subprocess.run(["pg_dump", *PG, DB], stdout=fh, check=True)
    # A realistic 1% change: 0.5% new rows appended, 0.5% contiguous rows updated.
    extra = rows // 200
    psql(ORDERS.format(customers=customers, start=rows + 1, stop=rows + extra), DB)
    lo = rows // 3
    psql(
        f"UPDATE orders SET status = 'refunded', amount = amount + 1 WHERE id BETWEEN {lo} AND {lo + extra}",
        DB,
    )
    with open(second, "wb") as fh:
        subprocess.run(["pg_dump", *PG, DB], stdout=fh, check=True)
    return first, second


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mib: float


def run(argv: list[str], *, stdin: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run a command with stdout to /dev/null; wall time and the child's peak RSS (wait4)."""
    with open(stdin or os.devnull, "rb") as src, open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=src, stdout=sink, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({proc.returncode}): {err.decode()[-500:]}")
    return Run(elapsed, usage.ru_maxrss / 1024)


def best(runs: list[Run]) -> Run:
    """The median time of repeated runs, and their largest RSS (figures to compare are interleaved in
    bench_transfer.py; here runs of one tool follow each other)."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    return Run(ordered[len(ordered) // 2].seconds, max(r.rss_mib for r in runs))


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Result:
    tool: str
    backup: Run
    first_bytes: int
    second_added: int
    restore: Run
    piped: Run  # `pg_dump | tool backup --stdin`, the way a backup Job runs it


def piped_backup(argv: list[str], env: dict[str, str]) -> Run:
    """`pg_dump | <backup command>` through a shell pipeline with pipefail; wall time only matters."""
    pipeline = (
        " ".join(shlex.quote(a) for a in ["pg_dump", *PG, DB])
        + " | "
        + " ".join(shlex.quote(a) for a in argv)
    )
    return run(["bash", "-o", "pipefail", "-c", pipeline], env=env)


def bench_stashplan(first: Path, second: Path) -> Result:
    repo = OUT / "stashplan-repo"
    shutil.rmtree(repo, ignore_errors=True)
    cli = [sys.executable, "-m", "stashplan.repository.cli"]
    env = {"STASHPLAN_PASSWORD": PASSWORD}
    url = f"local:{repo}"
    runs = []
    for _ in range(REPEAT):
        shutil.rmtree(repo, ignore_errors=True)
        run([*cli, "init", "--repo", url], env=env)
        runs.append(
            run(
                [*cli, "backup", "--stdin", "--stdin-filename", "dump.sql", "--repo", url],
                stdin=first,
                env=env,
            )
        )
    size1 = du(repo)
    run([*cli, "backup", "--stdin", "--stdin-filename", "dump.sql", "--repo", url], stdin=second, env=env)
    restore = best([run([*cli, "restore", "latest", "--repo", url], env=env) for _ in range(REPEAT)])
    piped = best([piped_backup([*cli, "backup", "--stdin", "--repo", url], env) for _ in range(REPEAT)])
    return Result("stashplan", best(runs), size1, du(repo) - size1, restore, piped)


def bench_restic(first: Path, second: Path) -> Result:
    repo = OUT / "restic-repo"
    shutil.rmtree(repo, ignore_errors=True)
    env = {"RESTIC_PASSWORD": PASSWORD, "RESTIC_CACHE_DIR": str(OUT / "restic-cache")}
    base = [RESTIC, "-r", str(repo), "--quiet"]
    runs = []
    for _ in range(REPEAT):
        shutil.rmtree(repo, ignore_errors=True)
        run([*base, "init"], env=env)
        runs.append(
            run(
                [*base, "backup", "--stdin", "--stdin-filename", "dump.sql", "--host", "bench"],
                stdin=first,
                env=env,
            )
        )
    size1 = du(repo)
    run(
        [*base, "backup", "--stdin", "--stdin-filename", "dump.sql", "--host", "bench"], stdin=second, env=env
    )
    restore = best([run([*base, "dump", "latest", "/dump.sql"], env=env) for _ in range(REPEAT)])
    piped = best([piped_backup([*base, "backup", "--stdin", "--host", "bench"], env) for _ in range(REPEAT)])
    return Result("restic", best(runs), size1, du(repo) - size1, restore, piped)


def main() -> None:
    first, second = prepare_dumps()
    size = first.stat().st_size
    size2 = second.stat().st_size
    print(f"dump: {size / 1e6:.1f} MB (after 1% change: {size2 / 1e6:.1f} MB)", flush=True)
    pg = best([run(["pg_dump", *PG, DB]) for _ in range(REPEAT)])
    pg_rate = size2 / pg.seconds / 1e6
    results = [bench_stashplan(first, second), bench_restic(first, second)]
    print()
    header = (
        f"{'tool':<10} {'backup MB/s':>11} {'peak RSS MiB':>12} {'repo MB (1st)':>13} {'2nd adds MB':>11} "
        f"{'restore MB/s':>12} {'restore RSS':>11} {'pg_dump|tool MB/s':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.tool:<10} {size / r.backup.seconds / 1e6:>11.1f} {r.backup.rss_mib:>12.1f} {r.first_bytes / 1e6:>13.1f} "
            f"{r.second_added / 1e6:>11.2f} {size2 / r.restore.seconds / 1e6:>12.1f} {r.restore.rss_mib:>11.1f} "
            f"{size2 / r.piped.seconds / 1e6:>17.1f}"
        )
    print(f"{'pg_dump':<10} {pg_rate:>11.1f} {pg.rss_mib:>12.1f}   (pg_dump > /dev/null, same database)")
    sp, rs = results
    sp_rate, rs_rate = size / sp.backup.seconds / 1e6, size / rs.backup.seconds / 1e6
    print()
    print("(not interleaved, different settings per tool: the goals are checked by bench_transfer.py)")
    print(f"backup from a file vs restic: {sp_rate / rs_rate:.2f}x")
    print(f"peak RSS:            {max(sp.backup.rss_mib, sp.restore.rss_mib):.1f} MiB")
    print(f"2nd snapshot growth: {sp.second_added / max(rs.second_added, 1):.2f}x restic's")
    print(f"restore vs restic:   {rs.restore.seconds / sp.restore.seconds:.2f}x")
    print(f"pg_dump | stashplan: {pg.seconds / sp.piped.seconds:.2f}x the speed of pg_dump > /dev/null")


if __name__ == "__main__":
    main()
