"""Time until a restored PostgreSQL is usable: `stashplan pg restore --latest` against pgBackRest's restore, from
physical backups of the same database and the same archived WAL, in interleaved rounds (BENCH_REPS=3), medians
with min-max. Goal (issue 25): stashplan within 1.25x of pgBackRest.

One private PostgreSQL 15 source (bench-out/pitr-restore/, free loopback port, the postgres OS user, default
settings, fsync on, trust on loopback, wal_level=replica, archive_mode=on) whose archive_command pushes every
WAL file to both tools: `pgbackrest archive-push %p && stashplan pg wal-push -r REPO %p`. It holds
`pgbench -i -s BENCH_PGBENCH_SCALE` (default 20); then one base backup per tool, then BENCH_PITR_WAL_SECONDS
(default 10) of `pgbench -c 2` so that a restore replays WAL written after its backup, then a WAL switch
waited for until archived. stashplan's base backup is taken first, so its restores also replay the segments
pgBackRest's backup wrote (about 2 more; "WAL files fetched" shows it).
Settings of every tool:
- stashplan: `stashplan pg basebackup` (pg_basebackup -Ft -X none --checkpoint=fast into a `repo init`
  repository with its defaults: FastCDC 128 KiB / 512 KiB / 2 MiB, zstd level 1, AES-256-GCM, default scrypt);
  restore = `stashplan pg restore -r REPO --latest --archive-mode off --pgdata DIR` (its default --prefetch 16:
  the first 4 WAL files fetched while the data directory is written, then a background process keeps 16 ahead
  of recovery in the data directory's spool; restore_command links a spooled file into place in the shell,
  else runs `stashplan pg wal-fetch`);
- pgBackRest (Debian's): `backup --type=full --start-fast=y compress-type=zst compress-level=1
  --process-max=2`, one posix repository; restore = `restore --process-max=2 --archive-mode=off` (recovery
  type default: replay to the end of the archive, then promote).
Each round restores into a fresh data directory (timed: "restore command"), runs `pg_ctl start -w` on another
port (archive_mode=off) and polls every 50 ms until `pg_is_in_recovery()` is false (timed: "start+replay");
the server is then stopped and removed (not timed). "WAL files fetched" counts the server log's "restored log
file" lines (segments and history files the restore_command delivered); for stashplan, `--stashplan-command`
is a `/bin/sh` script that runs stashplan and appends its start, end, exit status and arguments to a file,
which counts the calls that reached stashplan (not those the spool answered in the shell; those that found
nothing included: PostgreSQL asks for the next segment and for a history file before it promotes);
BENCH_SHOW_CALLS=1 prints them, BENCH_KEEP=1 keeps the source's repositories under bench-out/ for profiling.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPS, Goals, Sample, Spread, interleave, ratio, run_shell, walls
from pitr_instances import AS_PG, PG_BIN, Instance, Work, free_port, sh, versions

STANZA = "bench"


class Restores:
    """The source, its two archives, and one restore case per tool."""

    def __init__(self, work: Work, source: Instance, repo: str) -> None:
        self.work, self.source, self.repo = work, source, repo
        self.conf = work.path / "pgbackrest.conf"
        self.rounds = 0
        w = work.path
        self.conf.write_text("\n".join([
            "[global]", f"repo1-path={w / 'pgbackrest-repo'}", "repo1-retention-full=9999",
            "compress-type=zst", "compress-level=1", "start-fast=y", "expire-auto=n", f"lock-path={w / 'lock'}",
            f"log-path={w / 'log'}", f"spool-path={w / 'spool'}", "log-level-console=warn",
            "log-level-file=off", "", f"[{STANZA}]", f"pg1-path={self.source.data}",
            f"pg1-port={self.source.port}", f"pg1-socket-path={w}", ""]))

    @property
    def pgbackrest(self) -> str:
        return f"{AS_PG}pgbackrest --config={self.conf} --stanza={STANZA}"

    def archive_command(self) -> str:
        push = self.work.pg("wal-push", "-r", self.repo, "--password-file", str(self.work.password_file))
        return f"{self.pgbackrest.removeprefix(AS_PG)} archive-push %p && {push.removeprefix(AS_PG)} %p"

    def _target(self) -> Instance:
        self.rounds += 1
        return Instance(self.work.path / f"restored-{self.rounds}", free_port(), self.work.path)

    def _until_usable(self, target: Instance, restore: str) -> Sample:
        """The restore command, then start and replay until promoted: both timed, the sum is the sample's wall;
        `extra` keeps each phase and the WAL files the server restored from the archive."""
        opts = shlex.quote(f"-p {target.port} -k {self.work.path} -c listen_addresses=127.0.0.1 -c archive_mode=off")
        ask = f"psql {target.conn} -d postgres -XAtq -c 'SELECT pg_is_in_recovery()' 2>/dev/null"
        try:
            written = run_shell(f"{restore} >/dev/null")
            usable = run_shell(
                f"{AS_PG}{PG_BIN}/pg_ctl -D {target.data} -l {target.data}.log -w -t 600 -o {opts} start >/dev/null"
                f" && until [ \"$({ask})\" = f ]; do sleep 0.05; done")
            fetched = target.log().count("restored log file")
            return Sample(written.wall + usable.wall, written.cpu + usable.cpu, max(written.rss, usable.rss),
                          {"restore": written.wall, "recover": usable.wall, "fetched": fetched, "calls": 0})
        except SystemExit:
            print(f"{target.data}.log:\n{target.log()[-3000:]}", file=sys.stderr)
            raise
        finally:
            target.stop()
            sh(f"rm -rf {target.data} {target.data}.log")

    def counting_command(self) -> Path:
        """What restore_command runs: a shell script that records each call in `calls`, then execs stashplan."""
        script = self.work.path / "stashplan-counted"
        script.write_text(
            f'#!/bin/sh\nstart=$(date +%s.%N)\n{self.work.stashplan} "$@"\nrc=$?\n'
            f'echo "$start $(date +%s.%N) $rc $*" >> {self.calls}\nexit $rc\n'
        )
        script.chmod(0o755)
        return script

    @property
    def calls(self) -> Path:
        return self.work.path / "restore-command-calls"

    def stashplan(self) -> Sample:
        target = self._target()
        self.calls.unlink(missing_ok=True)
        sample = self._until_usable(target, self.work.pg(
            "restore", "-r", self.repo, "--password-file", str(self.work.password_file), "--latest",
            "--pgdata", str(target.data), "--archive-mode", "off", "--stashplan-command",
            str(self.counting_command())))
        calls = len(self.calls.read_text().splitlines()) if self.calls.exists() else 0
        if os.environ.get("BENCH_SHOW_CALLS"):
            print(self.calls.read_text() if self.calls.exists() else "", file=sys.stderr)
        return Sample(sample.wall, sample.cpu, sample.rss, {**sample.extra, "calls": calls})

    def pgbackrest_restore(self, process_max: int) -> Callable[[], Sample]:
        def case() -> Sample:
            target = self._target()
            return self._until_usable(target, f"{self.pgbackrest} --pg1-path={target.data} "
                                              f"--process-max={process_max} --archive-mode=off restore")
        return case


def main() -> None:
    scale = int(os.environ.get("BENCH_PGBENCH_SCALE", "20"))
    churn = int(os.environ.get("BENCH_PITR_WAL_SECONDS", "10"))
    print(f"pitr time-to-usable benchmark; {versions()}")
    doc = __doc__ or ""
    print("  " + doc[doc.index("Settings of every tool:"):].strip().replace("\n", "\n  "))
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (other work on the machine slows every case)")
    work = Work("pitr-restore")
    goals = Goals()
    try:
        source = Instance(work.path / "source", free_port(), work.path)
        case = Restores(work, source, work.repository())
        source.initdb(wal_level="replica", archive_mode="on", archive_command=case.archive_command())
        source.start()
        print(f"loading pgbench -s {scale}...", flush=True)
        sh(f"pgbench {source.conn} -i -q -s {scale} postgres")
        source.sql("CHECKPOINT")
        sh(f"{case.pgbackrest} stanza-create && {case.pgbackrest} check")
        base = run_shell(work.pg("basebackup", "-r", case.repo, "--password-file", str(work.password_file),
                                 "--host", str(work.path), "--port", str(source.port), "--user", "postgres",
                                 "--pg-basebackup", str(PG_BIN / "pg_basebackup")) + " >/dev/null")
        full = run_shell(f"{case.pgbackrest} --type=full --process-max=2 backup")
        sh(f"pgbench {source.conn} -c 2 -T {churn} postgres")
        source.switch_wal()
        db_mib = int(source.sql("SELECT pg_database_size('postgres')")) / 2**20
        wal = len(list((source.data / "pg_wal" / "archive_status").glob("*.done")))
        print(f"database {db_mib:.0f} MiB; base backup: stashplan {base.wall:.1f} s, pgBackRest {full.wall:.1f} s; "
              f"{churn} s of pgbench -c 2 after them; {wal} WAL files archived in all; {REPS} interleaved rounds",
              flush=True)
        rounds = interleave({"stashplan": case.stashplan, "pgBackRest pm2": case.pgbackrest_restore(2)})
    finally:
        if os.environ.get("BENCH_KEEP"):  # keep the source stopped, its repositories, for profiling by hand
            source.stop()
        else:
            work.close()
    print(f"  {'tool':<16}{'restore until usable s':>26}{'restore command s':>22}{'start+replay s':>22}"
          f"{'WAL files fetched':>19}{'calls to stashplan':>23}")
    for name, samples in rounds.items():
        phase = {k: Spread.of([s.extra[k] for s in samples]) for k in ("restore", "recover", "fetched", "calls")}
        calls = phase["calls"].fmt(digits=0) if phase["calls"].high else "-"
        print(f"  {name:<16}{walls(samples).fmt():>26}{phase['restore'].fmt():>22}{phase['recover'].fmt():>22}"
              f"{phase['fetched'].fmt(digits=0):>19}{calls:>23}")
    per_call = Spread.of([s.extra["recover"] / max(1, s.extra["calls"]) for s in rounds["stashplan"]])
    goals.note("stashplan start+replay / calls that reached stashplan", f"{per_call.fmt(' s')} per call")
    goals.note("stashplan pg restore / pgBackRest restore, the restore command alone (data directory written)",
               f"{ratio(rounds['stashplan'], rounds['pgBackRest pm2'], lambda s: s.extra['restore']).fmt('x')}"
               f"  (load {os.getloadavg()[0]:.1f})")
    goals.check("stashplan pg restore --latest / pgBackRest restore (pm2), until usable",
                ratio(rounds["stashplan"], rounds["pgBackRest pm2"]), 1.25, at_most=True)
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
