"""End-to-end transfer benchmark: `stashplan transfer backup` of a PostgreSQL database of BENCH_PG_MB
(default 1024) MB next to `pg_dump > /dev/null` and `pg_dump | restic backup --stdin`; throughput and
peak RSS (whole process tree) of each, printed as a table. Needs PostgreSQL on 127.0.0.1:5432 (trust).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stashplan.cluster.local import LocalCluster  # noqa: E402

DB = "stashplan_bench"
PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
NS = "bench"


@dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    peak_rss: int
    exit_code: int


def psql(sql: str, db: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", *PG, "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def ensure_database(target_mb: int) -> int:
    """Create (once) a database of about target_mb MB; returns its size in bytes."""
    if psql(f"SELECT count(*) FROM pg_database WHERE datname = '{DB}'") == "0":
        psql(f"CREATE DATABASE {DB}")
    size = int(psql(f"SELECT pg_database_size('{DB}')"))
    if size >= target_mb * 1024 * 1024 * 0.9:
        return size
    print(f"creating a {target_mb} MB database {DB} (once; reused by later runs)...", flush=True)
    psql("DROP TABLE IF EXISTS rows", db=DB)
    # ~160 bytes per row on disk: an id, a timestamp, a number and 96 hex characters.
    rows = target_mb * 1024 * 1024 // 160
    psql("CREATE TABLE rows(id bigint primary key, at timestamptz, n double precision, body text)", db=DB)
    step = 1_000_000
    for start in range(1, rows + 1, step):
        end = min(rows, start + step - 1)
        psql(
            f"INSERT INTO rows SELECT g, now() - g * interval '1 second', random(), "
            f"md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) FROM generate_series({start}, {end}) g",
            db=DB,
        )
    psql("VACUUM ANALYZE rows", db=DB)
    return int(psql(f"SELECT pg_database_size('{DB}')"))


def measure(name: str, argv: list[str], env: dict[str, str] | None = None) -> Run:
    """Run argv, sampling the RSS of its whole process tree every 20 ms."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [ps, *ps.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if proc.returncode != 0:
        print(f"{name} failed ({proc.returncode}): {err[-500:]}", file=sys.stderr)
    return Run(name, seconds, peak, proc.returncode)


def stashplan_world(state: Path, repo_dir: Path) -> None:
    cluster = LocalCluster(state)
    try:

        def create(obj: dict) -> None:
            obj["metadata"]["namespace"] = NS
            cluster.create(obj)

        create(
            {
                "kind": "Secret",
                "metadata": {"name": "repo-secret"},
                "stringData": {"RESTIC_PASSWORD": "bench-password"},
            }
        )
        create(
            {
                "kind": "Repository",
                "apiVersion": "stash.appscode.com/v1alpha1",
                "metadata": {"name": "repo"},
                "spec": {
                    "backend": {"local": {"mountPath": str(repo_dir)}, "storageSecretName": "repo-secret"}
                },
            }
        )
        create(
            {
                "kind": "AppBinding",
                "apiVersion": "appcatalog.appscode.com/v1alpha1",
                "metadata": {"name": "db"},
                "spec": {
                    "type": "kubedb.com/postgres",
                    "clientConfig": {"url": f"postgresql://127.0.0.1:5432/{DB}?sslmode=disable"},
                },
            }
        )
        create(
            {
                "kind": "BackupConfiguration",
                "apiVersion": "stash.appscode.com/v1beta1",
                "metadata": {"name": "cfg"},
                "spec": {
                    "repository": {"name": "repo"},
                    "schedule": "@daily",
                    "target": {"ref": {"kind": "AppBinding", "name": "db"}},
                    "retentionPolicy": {"name": "keep", "keepLast": 5, "prune": True},
                },
            }
        )
        create(
            {
                "kind": "BackupSession",
                "apiVersion": "stash.appscode.com/v1beta1",
                "metadata": {"name": "s1"},
                "spec": {"invoker": {"kind": "BackupConfiguration", "name": "cfg"}},
            }
        )
    finally:
        cluster.close()


def main() -> int:
    target_mb = int(os.environ.get("BENCH_PG_MB", "1024"))
    db_size = ensure_database(target_mb)
    dump_size = int(
        subprocess.run(
            f"pg_dump {' '.join(PG)} {DB} | wc -c", shell=True, capture_output=True, text=True, check=True
        ).stdout
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        work = Path(tmp)
        runs.append(measure("pg_dump > /dev/null", ["sh", "-c", f"pg_dump {' '.join(PG)} {DB} > /dev/null"]))
        restic_repo = work / "restic"
        env = {**os.environ, "RESTIC_PASSWORD": "bench-password", "RESTIC_REPOSITORY": str(restic_repo)}
        subprocess.run(["restic", "init", "-q"], env=env, check=True, capture_output=True)
        runs.append(
            measure(
                "pg_dump | restic backup --stdin",
                [
                    "bash",
                    "-c",
                    f"set -o pipefail; pg_dump {' '.join(PG)} {DB} | "
                    "restic backup -q --stdin --stdin-filename dumpfile.sql --host host-0",
                ],
                env=env,
            )
        )
        state = work / "state.db"
        stashplan_world(state, work / "stashplan-repo")
        env = {**os.environ, "STASHPLAN_CLUSTER": "local", "STASHPLAN_STATE": str(state)}
        runs.append(
            measure(
                "stashplan transfer backup",
                [
                    sys.executable,
                    "-m",
                    "stashplan.transfer.cli",
                    "backup",
                    f"--namespace={NS}",
                    "--backupsession=s1",
                    "--database=postgres",
                    "--wait-timeout=30",
                ],
                env=env,
            )
        )
        stashplan_bytes = sum(f.stat().st_size for f in (work / "stashplan-repo").rglob("*") if f.is_file())
        restic_bytes = sum(f.stat().st_size for f in restic_repo.rglob("*") if f.is_file())
        shutil.rmtree(work, ignore_errors=True)
    mib = 1024 * 1024
    print(
        f"\ndatabase {DB}: {db_size / mib:.0f} MiB on disk, plain dump {dump_size / mib:.0f} MiB; "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'command':<34} {'seconds':>8} {'MiB/s':>8} {'peak RSS MiB':>13} {'exit':>5}")
    for r in runs:
        print(
            f"{r.name:<34} {r.seconds:>8.1f} {dump_size / mib / r.seconds:>8.1f} {r.peak_rss / mib:>13.0f} "
            f"{r.exit_code:>5}"
        )
    print(f"repository size: restic {restic_bytes / mib:.0f} MiB, stashplan {stashplan_bytes / mib:.0f} MiB")
    print("(throughput = plain dump size / wall time; RSS summed over the process tree, sampled every 20 ms)")
    return 0 if all(r.exit_code == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
