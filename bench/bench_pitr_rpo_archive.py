"""RPO of WAL archived through archive_command (`stashplan pg wal-push`): under pgbench load, SIGKILL the server
(postmaster and every child at once, its data directory then treated as lost), `stashplan pg restore --latest`
into a fresh data directory, start it, and count the committed transactions it lacks. Interleaved rounds
(BENCH_REPS=3), medians with min-max, printed as info next to CloudNativePG's default promise of 5 minutes
(archive_timeout = 5min). The RPO of `stashplan pg wal-receive` (goal: at most 1 s) is bench_pitr_rpo.py's.

Each round: a fresh private PostgreSQL 15 (bench-out/pitr-rpo-archive/, free loopback port, the postgres OS user,
default settings, fsync on, wal_level=replica, archive_mode=on) and a fresh stashplan repository (`repo init`
defaults); `pgbench -i -s BENCH_RPO_SCALE` (default 5); one `stashplan pg basebackup`; then for
BENCH_RPO_SECONDS (default 20) `pgbench -c 2 -n` (TPC-B) plus a commit client: one psql session inserting ids
1, 2, 3 ... into a table, one autocommit INSERT ... RETURNING per transaction, the id counted as committed when
psql has printed it (PostgreSQL has then flushed the commit to its WAL). Then the kill, the restore, and
  transactions lost = last id acknowledged - highest id restored (the ids restored are checked to be 1..max);
  seconds of commits lost = acknowledgement time of the last id - that of the highest id restored;
  archiver behind = WAL files the source had ready (archive_status/*.ready) but not yet archived at the kill.
Cases: archive_command = `stashplan pg wal-push -r REPO %p` with archive_timeout 60s and 5s, and, when this
tree's wal-push has --spool (look-ahead), the same with `--spool DIR` at archive_timeout 5s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPS, Goals, Sample, Spread, interleave
from pitr_instances import AS_PG, PG_BIN, Instance, Work, free_port, sh, versions

SCALE = int(os.environ.get("BENCH_RPO_SCALE", "5"))
SECONDS = float(os.environ.get("BENCH_RPO_SECONDS", "20"))


@dataclass(frozen=True)
class Case:
    name: str
    archive_timeout: str
    spool: bool = False


class CommitClient:
    """One psql session committing `INSERT INTO commits VALUES (n) RETURNING id` in a loop; `acked[n - 1]` is
    the monotonic time psql printed n."""

    def __init__(self, inst: Instance) -> None:
        self.proc = subprocess.Popen(
            ["psql", *inst.conn.split(), "-d", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.acked: list[float] = []

    def run_for(self, seconds: float) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            n = len(self.acked) + 1
            self.proc.stdin.write(f"INSERT INTO commits VALUES ({n}) RETURNING id;\n")
            self.proc.stdin.flush()
            if self.proc.stdout.readline().strip() != str(n):
                raise SystemExit(f"commit client: no acknowledgement of id {n}")
            self.acked.append(time.monotonic())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Rounds:
    def __init__(self, work: Work) -> None:
        self.work, self.round = work, 0

    def case(self, case: Case) -> Callable[[], Sample]:
        return lambda: self.one(case)

    def one(self, case: Case) -> Sample:
        self.round += 1
        w = self.work
        repo = w.repository(f"repo-{self.round}")
        pw = ("--password-file", str(w.password_file))
        source = Instance(w.path / f"source-{self.round}", free_port(), w.path)
        restored = Instance(w.path / f"restored-{self.round}", free_port(), w.path)
        spool = ("--spool", str(w.path / f"spool-{self.round}")) if case.spool else ()
        push = w.pg("wal-push", "-r", repo, *pw, *spool).removeprefix(AS_PG)
        source.initdb(wal_level="replica", archive_mode="on", archive_command=f"{push} %p",
                      archive_timeout=case.archive_timeout)
        try:
            source.start()
            sh(f"pgbench {source.conn} -i -q -s {SCALE} postgres")
            source.sql("CREATE TABLE commits(id bigint PRIMARY KEY)")
            sh(w.pg("basebackup", "-r", repo, *pw, "--host", str(w.path), "--port", str(source.port),
                    "--pg-basebackup", str(PG_BIN / "pg_basebackup")) + " >/dev/null")
            load = subprocess.Popen(["pgbench", *source.conn.split(), "-c", "2", "-n", "-T",
                                     str(int(SECONDS) + 30), "postgres"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = CommitClient(source)
            try:
                client.run_for(SECONDS)
                source.kill9()
            finally:
                client.close()
                load.kill()
                load.wait()
            behind = len(list((source.data / "pg_wal" / "archive_status").glob("*.ready")))
            source.stop()
            sh(w.pg("restore", "-r", repo, *pw, "--latest", "--pgdata", str(restored.data),
                    "--stashplan-command", w.stashplan) + " >/dev/null")
            started = time.monotonic()
            restored.start("-c archive_mode=off")
            restored.wait_promoted()
            usable = time.monotonic() - started
            top, count = map(int, restored.sql("SELECT coalesce(max(id), 0), count(*) FROM commits").split("|"))
        except SystemExit:
            print(f"{case.name}: {source.data}.log:\n{source.log()[-2000:]}\n{restored.data}.log:\n"
                  f"{restored.log()[-2000:]}", file=sys.stderr)
            raise
        finally:
            source.stop()
            restored.stop()
            sh(f"rm -rf {source.data} {restored.data} {w.path / f'repo-{self.round}'} {w.path / f'spool-{self.round}'}")
        if count != top:
            raise SystemExit(f"{case.name}: restored ids are not 1..{top} ({count} rows)")
        acked = client.acked
        lost = max(0, len(acked) - top)
        seconds = acked[-1] - acked[top - 1] if 0 < top <= len(acked) else (acked[-1] - acked[0] if lost else 0.0)
        return Sample(seconds, extra={"lost": lost, "acked": len(acked), "behind": behind, "usable": usable})


def main() -> None:
    print(f"pitr RPO benchmark, archive_command; {versions()}")
    print(f"  pgbench -i -s {SCALE}; {SECONDS:g} s of pgbench -c 2 -n plus the commit client before the kill")
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (other work on the machine slows every case)")
    work = Work("pitr-rpo-archive")
    cases = [Case("wal-push, archive_timeout=60s", "60s"), Case("wal-push, archive_timeout=5s", "5s")]
    if "--spool" in sh(work.pg("wal-push", "--help")):
        cases.append(Case("wal-push --spool, archive_timeout=5s", "5s", spool=True))
    rounds = Rounds(work)
    try:
        results = interleave({c.name: rounds.case(c) for c in cases})
    finally:
        work.close()
    print(f"{REPS} interleaved rounds; load average {os.getloadavg()[0]:.1f}")
    print(f"  {'case':<40}{'transactions lost':>20}{'of acknowledged':>18}{'seconds of commits lost':>26}"
          f"{'WAL files not archived':>24}{'start+replay s':>20}")
    goals = Goals()
    for name, samples in results.items():
        col = {k: Spread.of([s.extra[k] for s in samples]) for k in ("lost", "acked", "behind", "usable")}
        secs = Spread.of([s.wall for s in samples])
        print(f"  {name:<40}{col['lost'].fmt(digits=0):>20}{col['acked'].fmt(digits=0):>18}{secs.fmt():>26}"
              f"{col['behind'].fmt(digits=0):>24}{col['usable'].fmt():>20}")
        goals.note(f"{name}: seconds of commits lost", f"{secs.fmt(' s')}  (CloudNativePG's default promise: "
                   f"300 s; load {os.getloadavg()[0]:.1f})")
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
