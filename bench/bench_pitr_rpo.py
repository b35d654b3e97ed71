"""RPO of `stashplan pg wal-receive` (issue 25 item 7): under pgbench load, every process of the PostgreSQL server
is killed (SIGKILL), then `stashplan pg restore --latest` writes a fresh data directory that is started until
it is out of recovery. Lost: the commits pgbench saw acknowledged that the restored server lacks, counted and
in seconds (the last acknowledged commit's time minus the last restored row's). Interleaved rounds (BENCH_REPS):
- receiver survives: wal-receive runs on (as it would on another machine); SIGTERM 2 s after the crash makes
  it push the partial segment once more, then it stops;
- receiver dies too: wal-receive is killed (SIGKILL) with the server: the repository holds what its last
  periodic push carried (the worst case).
Settings: a private PostgreSQL 15 per round (initdb under bench-out/pitr-rpo/, default settings, fsync on,
wal_level replica, no archive_command), one local repository per round (repo init defaults), wal-receive
--partial-interval BENCH_RPO_INTERVAL (default 1 s), pgbench -n -c 4 -j 2 with one single-row INSERT per
transaction for BENCH_RPO_LOAD seconds (default 8) before the crash. Everything stashplan runs as the postgres OS
user, as a server's archive tools do. Goal (issue 25): at most 1 s of commits lost when the receiver survives,
against CloudNativePG's default promise of 5 minutes (archive_timeout); the other case is shown as info.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import REPS, Goals, Sample, Spread, interleave  # noqa: E402

from providers.storage import open_storage  # noqa: E402
from stashplan.repository import Repository  # noqa: E402
from tests.fixtures.databases import free_port  # noqa: E402
from tests.fixtures.pitr import _python_for_postgres  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WORK = ROOT / "bench-out" / "pitr-rpo"
PASSWORD = "bench-password"
AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
INTERVAL = os.environ.get("BENCH_RPO_INTERVAL", "1")
LOAD = float(os.environ.get("BENCH_RPO_LOAD", "8"))
STASHPLAN, PYTHONPATH = _python_for_postgres()
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH, "STASHPLAN_PASSWORD": PASSWORD}


def as_pg(*argv: str, check: bool = True) -> str:
    done = subprocess.run([*AS_PG, *argv], capture_output=True, text=True, env=ENV, cwd=WORK)
    if check and done.returncode:
        raise SystemExit(f"{' '.join(argv)[:200]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.strip()


def sql(port: int, statement: str) -> str:
    return as_pg(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-XAtq", "-c", statement)


def start(data: Path, port: int, *settings: str) -> None:
    opts = f"-p {port} -k {WORK} -c listen_addresses=127.0.0.1 " + " ".join(settings)
    as_pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", f"{data}.log", "-w", "-t", "300", "-o", opts, "start")


def kill_server(data: Path) -> None:
    """SIGKILL the postmaster and every child at once (a machine lost, not a shutdown)."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == postmaster]
    subprocess.run(["kill", "-KILL", str(postmaster), *children], check=False)


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def receiver_pid(proc: subprocess.Popen[bytes]) -> int:
    if not AS_PG:
        return proc.pid
    for _ in range(200):
        if pids := Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
            return int(pids[0])
        time.sleep(0.05)
    raise SystemExit("wal-receive did not start")


def acknowledged(prefix: Path) -> list[float]:
    """Completion times of the transactions pgbench logged as done (-l: client, no, latency, script, epoch, us)."""
    out = []
    for log in prefix.parent.glob(prefix.name + ".*"):
        for line in log.read_text().split("\n"):
            fields = line.split()
            if len(fields) >= 6 and fields[2] not in ("failed", "skipped"):
                out.append(int(fields[4]) + int(fields[5]) / 1e6)
    return sorted(out)


def round_(receiver_survives: bool) -> Sample:
    here = WORK / f"round-{time.monotonic_ns()}"
    here.mkdir()
    if AS_PG:
        shutil.chown(here, "postgres")
    data, port, repo = here / "data", free_port(), f"local:{here / 'repo'}"
    as_pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N")
    Repository.init(open_storage(repo), PASSWORD).close()
    if AS_PG:
        subprocess.run(["chown", "-R", "postgres", str(here / "repo")], check=True)
    restored = here / "restored"
    receiver = None
    try:
        start(data, port, "-c wal_level=replica")
        sql(port, "CREATE TABLE rpo(id bigserial PRIMARY KEY, client int, at timestamptz DEFAULT clock_timestamp())")
        receiver = subprocess.Popen(
            [*AS_PG, *STASHPLAN, "pg", "wal-receive", "-r", repo, "--host", "127.0.0.1", "--port", str(port),
             "--directory", str(here / "received"), "--partial-interval", INTERVAL,
             "--pg-receivewal", str(PG_BIN / "pg_receivewal"), "--psql", str(PG_BIN / "psql")],
            env=ENV, cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while sql(port, "SELECT count(*) FROM pg_replication_slots WHERE active") != "1":
            time.sleep(0.1)
        as_pg(*STASHPLAN, "pg", "basebackup", "-r", repo, "--host", "127.0.0.1", "--port", str(port),
              "--pg-basebackup", str(PG_BIN / "pg_basebackup"))  # fmt: skip
        script = here / "insert.sql"
        script.write_text("INSERT INTO rpo(client) VALUES (:client_id);\n")
        prefix = here / "pgbench"
        load = subprocess.Popen(
            [*AS_PG, str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n",
             "-c", "4", "-j", "2", "-T", str(int(LOAD) + 60), "-f", str(script), "-l", f"--log-prefix={prefix}",
             "postgres"],
            env=ENV, cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(LOAD)
        if not receiver_survives:
            subprocess.run(["kill", "-KILL", str(receiver_pid(receiver))], check=False)
        kill_server(data)
        load.wait(120)
        if receiver_survives:
            time.sleep(2)
            subprocess.run(["kill", "-TERM", str(receiver_pid(receiver))], check=False)
        receiver.wait(120)
        done = acknowledged(prefix)
        as_pg(*STASHPLAN, "pg", "restore", "-r", repo, "--latest", "--archive-mode", "off", "--pgdata",
              str(restored))  # fmt: skip
        restored_port = free_port()
        start(restored, restored_port)
        while sql(restored_port, "SELECT pg_is_in_recovery()") != "f":
            time.sleep(0.05)
        count, last = sql(restored_port, "SELECT count(*), coalesce(extract(epoch FROM max(at)), 0) FROM rpo").split("|")
        lost = max(0, len(done) - int(count))
        seconds = max(0.0, done[-1] - float(last)) if done and lost else 0.0
        return Sample(seconds, extra={"lost": lost, "acknowledged": len(done)})
    finally:
        if receiver is not None and receiver.poll() is None:
            subprocess.run(["kill", "-KILL", str(receiver_pid(receiver))], check=False)
            receiver.wait()
        for pgdata in (data, restored):
            if (pgdata / "postmaster.pid").exists():
                as_pg(str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop", check=False)
        shutil.rmtree(here, ignore_errors=True)


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if AS_PG:
        shutil.chown(WORK, "postgres")
    print(f"PITR RPO benchmark (wal-receive --partial-interval {INTERVAL} s, {LOAD:g} s of load, {REPS} rounds)")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    goals = Goals()
    try:
        results = interleave({"survives": lambda: round_(True), "dies": lambda: round_(False)})
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    for name, samples in results.items():
        acked = Spread.of([s.extra["acknowledged"] for s in samples])
        lost = Spread.of([s.extra["lost"] for s in samples])
        print(f"  receiver {name}: commits lost {lost.fmt('', 0)} of {acked.fmt('', 0)} acknowledged; "
              f"seconds of commits lost {Spread.of([s.wall for s in samples]).fmt(' s')}")
    goals.check("seconds of commits lost, receiver survives", Spread.of([s.wall for s in results["survives"]]),
                1.0, at_most=True, unit=" s")
    goals.note("seconds of commits lost, receiver dies with the server",
               Spread.of([s.wall for s in results["dies"]]).fmt(" s") + f" (about --partial-interval {INTERVAL} s plus one push)")
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
