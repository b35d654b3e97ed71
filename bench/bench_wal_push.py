"""WAL archive throughput (issue 25 item 7): the same real 16 MiB segments archived one archive_command call at a
time, in order, as PostgreSQL calls it, by `stashplan pg wal-push`, by `stashplan pg wal-push --spool` (look-ahead:
the first call pushes the ready files after it, four at a time, and later calls are answered from the spool) and
by Debian's `pgbackrest archive-push` (synchronous), a fresh repository per round, interleaved rounds (BENCH_REPS).
Settings: BENCH_WAL_SEGMENTS segments (default 24) written by a private PostgreSQL 15 (initdb under
bench-out/wal-push/, inserting md5 text; collected with `cp` as its archive_command); stashplan: `repo init`
defaults (its scrypt key derivation is paid by every call that opens the repository, zstd level 1, AES-256-GCM);
pgBackRest: compress-type=zst compress-level=1, one posix repository (stanza-create before each round, not timed).
Every command runs as the postgres OS user, as archive_command does; after each call the file's `.ready` becomes
`.done`, as PostgreSQL does. Printed: MiB/s of each, and the ratios to pgBackRest (info: the issue sets no target).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import Goals, Sample, Spread, interleave, ratio, run_process  # noqa: E402

from providers.storage import open_storage  # noqa: E402
from stashplan.repository import Repository  # noqa: E402
from tests.fixtures.databases import free_port  # noqa: E402
from tests.fixtures.pitr import _python_for_postgres  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WORK = ROOT / "bench-out" / "wal-push"
PASSWORD = "bench-password"
AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
SEGMENTS = int(os.environ.get("BENCH_WAL_SEGMENTS", "24"))
STASHPLAN, PYTHONPATH = _python_for_postgres()
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH, "STASHPLAN_PASSWORD": PASSWORD}
STANZA = "bench"


def as_pg(*argv: str) -> str:
    done = subprocess.run([*AS_PG, *argv], capture_output=True, text=True, env=ENV, cwd=WORK)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)[:200]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.strip()


def sql(port: int, statement: str) -> str:
    return as_pg(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-XAtq", "-c", statement)


def collect(port: int, into: Path) -> list[str]:
    """Write WAL until `SEGMENTS` whole segments are archived (by `cp`) into `into`; their names, in order."""
    sql(port, "CREATE TABLE filler(body text)")
    while len(names := sorted(p.name for p in into.iterdir() if len(p.name) == 24)) < SEGMENTS:
        sql(port, "INSERT INTO filler SELECT md5(random()::text) || md5(random()::text) "
                  "FROM generate_series(1, 100000)")  # fmt: skip
        sql(port, "SELECT pg_switch_wal()")
        time.sleep(0.2)
    return names[:SEGMENTS]


class Replay:
    """A pg_wal directory holding the collected segments, each marked ready; one shell loop calls a command per
    segment in order and marks it done, as PostgreSQL's archiver does."""

    def __init__(self, collected: Path, names: list[str]) -> None:
        self.wal, self.names = WORK / "replay" / "pg_wal", names
        (self.wal / "archive_status").mkdir(parents=True)
        for name in names:
            os.link(collected / name, self.wal / name)
        if AS_PG:
            subprocess.run(["chown", "-R", "postgres", str(WORK / "replay")], check=True)

    def run(self, command: str) -> Sample:
        status = self.wal / "archive_status"
        for name in self.names:
            (status / f"{name}.done").unlink(missing_ok=True)
            (status / f"{name}.ready").touch()
        if AS_PG:
            subprocess.run(["chown", "-R", "postgres", str(status)], check=True)
        wal = shlex.quote(str(self.wal))  # absolute: pgBackRest reads a relative path under pg1-path
        loop = (f"for f in {' '.join(self.names)}; do {command} {wal}/$f "
                f"&& mv {wal}/archive_status/$f.ready {wal}/archive_status/$f.done || exit 1; done")
        return run_process([*AS_PG, "bash", "-c", loop], env=ENV)


def fresh_repository(name: str) -> str:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    Repository.init(open_storage(f"local:{path}"), PASSWORD).close()
    if AS_PG:
        subprocess.run(["chown", "-R", "postgres", str(path)], check=True)
    return f"local:{path}"


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "collected").mkdir(parents=True)
    if AS_PG:
        subprocess.run(["chown", "-R", "postgres", str(WORK)], check=True)
    print(f"WAL archive throughput: {SEGMENTS} segments of 16 MiB; {as_pg('pgbackrest', 'version')}")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    data, port = WORK / "data", free_port()
    as_pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-N")
    opts = (f"-p {port} -k {WORK} -c listen_addresses=127.0.0.1 -c wal_level=replica -c archive_mode=on "
            f"-c \"archive_command=cp %p {WORK / 'collected'}/%f\"")
    as_pg(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", f"{data}.log", "-w", "-o", opts, "start")
    conf = WORK / "pgbackrest.conf"
    conf.write_text("\n".join([
        "[global]", f"repo1-path={WORK / 'pgbackrest-repo'}", "compress-type=zst", "compress-level=1",
        f"lock-path={WORK / 'lock'}", f"log-path={WORK / 'log'}", "log-level-console=warn", "log-level-file=off",
        "", f"[{STANZA}]", f"pg1-path={data}", f"pg1-port={port}", f"pg1-socket-path={WORK}", ""]))  # fmt: skip
    pgbackrest = f"pgbackrest --config={conf} --stanza={STANZA}"
    goals = Goals()
    try:
        replay = Replay(WORK / "collected", collect(port, WORK / "collected"))
        mib = SEGMENTS * 16

        def stashplan_push() -> Sample:
            repo = fresh_repository("stashplan-repo")
            return replay.run(" ".join([*map(shlex.quote, STASHPLAN), "pg", "wal-push", "-r", repo]) + " 2>/dev/null")

        def stashplan_spool() -> Sample:
            repo = fresh_repository("stashplan-repo")
            spool = WORK / "spool"
            shutil.rmtree(spool, ignore_errors=True)
            command = [*STASHPLAN, "pg", "wal-push", "-r", repo, "--spool", str(spool)]
            return replay.run(" ".join(map(shlex.quote, command)) + " 2>/dev/null")

        def pgbackrest_push() -> Sample:
            shutil.rmtree(WORK / "pgbackrest-repo", ignore_errors=True)
            as_pg("bash", "-c", f"{pgbackrest} stanza-create")
            return replay.run(f"{pgbackrest} archive-push")

        results = interleave({"wal-push": stashplan_push, "wal-push --spool": stashplan_spool,
                              "pgbackrest archive-push": pgbackrest_push})  # fmt: skip
        for name, samples in results.items():
            rate = Spread.of([mib / s.wall for s in samples])
            print(f"  {name}: {rate.fmt(' MiB/s', 1)}; wall {Spread.of([s.wall for s in samples]).fmt(' s')}")
        base = results["pgbackrest archive-push"]
        for name in ("wal-push", "wal-push --spool"):
            goals.note(f"{name} throughput / pgbackrest archive-push's", ratio(base, results[name]).fmt("x"))
    finally:
        subprocess.run([*AS_PG, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
        shutil.rmtree(WORK, ignore_errors=True)
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
