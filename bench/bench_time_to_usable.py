"""Time to usable: backup and restore wall time of stashplan and restic (logical: pg_dump | tool, tool | psql)
next to pgBackRest (physical: a full backup; restore, start, replay until `pg_is_in_recovery()` is false), per
database, in interleaved rounds (BENCH_REPS=3), medians with min-max.

Everything runs against PRIVATE PostgreSQL 15 instances (initdb under bench-out/time-to-usable/, free loopback
ports, as the `postgres` OS user, default settings, fsync on, trust on loopback), removed at the end:
- one source instance per database (wal_level=replica, archive_mode=on, archive_command = pgBackRest
  archive-push) holding only that database: `pgbench -i -s BENCH_PGBENCH_SCALE` (default 50), or rows like
  bench_transfer's (an id, a timestamp, a float, 96 hex characters; BENCH_TTU_PG_MB, default 300 MB);
- one target instance (no archiving) into which the logical restores load a fresh database each round.
Settings of every tool:
- stashplan: plain `pg_dump | stashplan repo backup --stdin`, `repo init` defaults (FastCDC 128 KiB / 512 KiB /
  2 MiB, zstd level 1, 4 MiB packs, AES-256-GCM), a fresh local repository per round; restore =
  `stashplan repo restore latest | psql -v ON_ERROR_STOP=1` into a fresh database (usable when psql ends);
- restic 0.18.1 (.cache/restic-0.18.1, built by .ci/services.sh; else the PATH restic, version printed):
  `pg_dump | restic backup --stdin`, compression auto, a fresh local repository per round; restore =
  `restic dump latest /dump.sql | psql` as above;
- pgBackRest (Debian's): `backup --type=full --start-fast=y compress-type=zst compress-level=1`, archive-check
  on, `--process-max=1` and `2`, one local repository (posix); restore = `restore --process-max=N
  --archive-mode=off` (recovery type default: replay to the end of the archive) into a fresh data directory,
  `pg_ctl start -w` on another port, poll every 50 ms until `pg_is_in_recovery()` is false: the whole cluster.
The ratios stashplan restore / pgBackRest restore are printed as info (issue 26: a future physical path must
restore within 1.25x of pgBackRest; the logical path is not held to it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import REPS, Goals, Sample, interleave, ratio, run_shell, walls  # noqa: E402

from providers.storage.local import LocalStorage  # noqa: E402
from stashplan.repository.layout import Params  # noqa: E402
from stashplan.repository.repo import Repository  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
WORK = ROOT / "bench-out" / "time-to-usable"
PASSWORD = "bench-password"
STASHPLAN = shlex.quote(str(Path(sys.executable).parent / "stashplan"))
_NEWER = ROOT / ".cache" / "restic-0.18.1" / "restic"
RESTIC = str(_NEWER) if _NEWER.exists() else (shutil.which("restic") or "/usr/bin/restic")
AS_PG = "runuser -u postgres -- " if os.geteuid() == 0 else ""
STANZA = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(script: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["bash", "-c", f"set -eo pipefail; {script}"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{script[:200]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.strip()


class Instance:
    """A private PostgreSQL 15 cluster run by the postgres OS user; its socket and log beside its data."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.conn = f"-h 127.0.0.1 -p {port} -U postgres"

    def start(self, *settings: str) -> None:
        opts = shlex.quote(f"-p {self.port} -k {WORK} -c listen_addresses=127.0.0.1 " + " ".join(settings))
        sh(f"{AS_PG}{PG_BIN}/pg_ctl -D {self.data} -l {self.data}.log -w -t 300 -o {opts} start")

    def stop(self) -> None:
        subprocess.run(f"{AS_PG}{PG_BIN}/pg_ctl -D {self.data} -m immediate -w stop", shell=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def sql(self, statement: str, db: str = "postgres") -> str:
        return sh(f"psql {self.conn} -d {db} -XAtq -v ON_ERROR_STOP=1 -c {shlex.quote(statement)}")


@contextmanager
def running(inst: Instance, *settings: str) -> Iterator[Instance]:
    """initdb + start; stopped (immediate) and removed on the way out, failure or not."""
    sh(f"{AS_PG}{PG_BIN}/initdb -D {inst.data} -U postgres -A trust -N")
    try:
        inst.start(*settings)
        yield inst
    finally:
        inst.stop()
        shutil.rmtree(inst.data, ignore_errors=True)


def load_rows(inst: Instance, db: str, target_mb: int) -> None:
    inst.sql("CREATE TABLE rows(id bigint primary key, at timestamptz, n double precision, body text)", db)
    rows = target_mb * 2**20 // 160
    for start in range(1, rows + 1, 1_000_000):
        inst.sql(f"INSERT INTO rows SELECT g, now() - g * interval '1 second', random(), md5(g::text) || "
                 f"md5((g * 7)::text) || md5((g * 13)::text) FROM generate_series({start}, "
                 f"{min(rows, start + 999_999)}) g", db)
    inst.sql("VACUUM ANALYZE rows", db)


class PgBackRest:
    """A pgBackRest stanza on a source instance: its config, repository, lock and log folders under WORK."""

    def __init__(self, source: Instance) -> None:
        self.source, self.conf = source, WORK / "pgbackrest.conf"
        self.conf.write_text("\n".join([
            "[global]", f"repo1-path={WORK / 'pgbackrest-repo'}", "repo1-retention-full=9999",
            "compress-type=zst", "compress-level=1", "start-fast=y", "expire-auto=n", f"lock-path={WORK / 'lock'}",
            f"log-path={WORK / 'log'}", f"spool-path={WORK / 'spool'}", "log-level-console=warn",
            "log-level-file=off", "", f"[{STANZA}]", f"pg1-path={source.data}", f"pg1-port={source.port}",
            f"pg1-socket-path={WORK}", ""]))
        self.cmd = f"{AS_PG}pgbackrest --config={self.conf} --stanza={STANZA}"
        self.restores = 0

    @property
    def archive_command(self) -> str:
        return f"archive_command=pgbackrest --config={self.conf} --stanza={STANZA} archive-push %p"

    def create(self) -> None:
        sh(f"{self.cmd} stanza-create && {self.cmd} check")

    def backup(self, process_max: int) -> Callable[[], Sample]:
        return lambda: run_shell(f"{self.cmd} --type=full --process-max={process_max} backup")

    def restore(self, process_max: int) -> Callable[[], Sample]:
        """Restore into a fresh data directory, start it on a free port, and wait until it is out of recovery;
        the server is then stopped and removed (not timed)."""
        def case() -> Sample:
            self.restores += 1
            target = Instance(WORK / f"restored-{self.restores}", free_port())
            opts = shlex.quote(f"-p {target.port} -k {WORK} -c listen_addresses=127.0.0.1 -c archive_mode=off")
            ask = f"psql {target.conn} -d postgres -XAtq -c 'SELECT pg_is_in_recovery()' 2>/dev/null"
            try:
                return run_shell(
                    f"{self.cmd} --pg1-path={target.data} --process-max={process_max} --archive-mode=off restore"
                    f" && {AS_PG}{PG_BIN}/pg_ctl -D {target.data} -l {target.data}.log -w -t 600 -o {opts} start"
                    f" >/dev/null && until [ \"$({ask})\" = f ]; do sleep 0.05; done")
            finally:
                target.stop()
                shutil.rmtree(target.data, ignore_errors=True)
        return case

    def info(self) -> list[dict[str, object]]:
        return list(json.loads(sh(f"{self.cmd} --output=json info"))[0]["backup"])


class Logical:
    """stashplan and restic: pg_dump of the source database into a fresh repository each round, and restores
    into a fresh database on the target instance."""

    def __init__(self, source: Instance, target: Instance, db: str) -> None:
        self.target, self.db = target, db
        self.dump = f"pg_dump {source.conn} {db}"
        self.env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD, "RESTIC_PASSWORD": PASSWORD,
                    "RESTIC_CACHE_DIR": str(WORK / "restic-cache")}

    def _fresh(self, name: str) -> Path:
        path = WORK / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def _into(self) -> str:
        """A fresh, empty database on the target instance; the psql command loading it."""
        self.target.sql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
        self.target.sql(f"CREATE DATABASE {self.db}")
        return f"psql {self.target.conn} -d {self.db} -Xq -v ON_ERROR_STOP=1 > /dev/null"

    def stashplan_backup(self) -> Sample:
        repo = self._fresh("stashplan-repo")
        Repository.init(LocalStorage(repo), PASSWORD, Params()).close()
        return run_shell(f"{self.dump} | {STASHPLAN} repo backup --stdin --stdin-filename dump.sql "
                         f"--repo local:{repo} > /dev/null", env=self.env)

    def restic_backup(self) -> Sample:
        repo = self._fresh("restic-repo")
        sh(f"{RESTIC} -r {repo} init -q", env=self.env)
        return run_shell(f"{self.dump} | {RESTIC} -r {repo} -q backup --stdin --stdin-filename dump.sql "
                         "--host bench", env=self.env)

    def stashplan_restore(self) -> Sample:
        into = self._into()
        return run_shell(f"{STASHPLAN} repo restore latest --repo local:{WORK / 'stashplan-repo'} | {into}",
                         env=self.env)

    def restic_restore(self) -> Sample:
        into = self._into()
        return run_shell(f"{RESTIC} -r {WORK / 'restic-repo'} -q dump latest /dump.sql | {into}", env=self.env)


def size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def bench_database(db: str, load: Callable[[Instance], object], target: Instance, goals: Goals) -> None:
    """One source instance holding `db`: load it, then the backup rounds and the restore rounds, and print."""
    for folder in ("pgbackrest-repo", "lock", "log", "spool"):
        shutil.rmtree(WORK / folder, ignore_errors=True)
    source = Instance(WORK / "source", free_port())
    conf = PgBackRest(source)
    with running(source, "-c wal_level=replica -c archive_mode=on", f"-c {shlex.quote(conf.archive_command)}"):
        print(f"\nloading {db}...", flush=True)
        source.sql(f"CREATE DATABASE {db}")
        load(source)
        source.sql("CHECKPOINT")
        conf.create()
        logical = Logical(source, target, db)
        backups = interleave({
            "stashplan": logical.stashplan_backup, "restic": logical.restic_backup,
            "pgBackRest pm1": conf.backup(1), "pgBackRest pm2": conf.backup(2)})
        restores = interleave({
            "stashplan": logical.stashplan_restore, "restic": logical.restic_restore,
            "pgBackRest pm1": conf.restore(1), "pgBackRest pm2": conf.restore(2)})
        db_mib = int(source.sql(f"SELECT pg_database_size('{db}')")) / 2**20
        cluster_mib = size_mib(source.data)
        dump_mib = int(sh(f"{logical.dump} | wc -c")) / 2**20
        last = conf.info()[-1]["info"]
        stored = {"stashplan": size_mib(WORK / "stashplan-repo"), "restic": size_mib(WORK / "restic-repo"),
                  "pgBackRest pm1": int(last["repository"]["delta"]) / 2**20}  # type: ignore[index]
    stored["pgBackRest pm2"] = stored["pgBackRest pm1"]
    print(f"{db}: database {db_mib:.0f} MiB, cluster {cluster_mib:.0f} MiB, plain dump {dump_mib:.0f} MiB; "
          f"{REPS} interleaved rounds; load average {os.getloadavg()[0]:.1f}")
    print(f"  {'tool':<16}{'backup wall s':>24}{'restore until usable s':>26}{'stored MiB':>12}")  # pgBackRest: one backup set
    for name in backups:
        print(f"  {name:<16}{walls(backups[name]).fmt():>24}{walls(restores[name]).fmt():>26}{stored[name]:>12.1f}")
    for peer in ("pgBackRest pm1", "pgBackRest pm2"):
        for tool in ("stashplan", "restic"):
            goals.note(f"{db}: {tool} restore|psql / {peer} restore, until usable",
                       f"{ratio(restores[tool], restores[peer]).fmt('x')}  (logical; issue 26's <= 1.25x is for a "
                       f"physical path; load {os.getloadavg()[0]:.1f})")
        goals.note(f"{db}: stashplan backup / {peer} backup",
                   f"{ratio(backups['stashplan'], backups[peer]).fmt('x')}  (load {os.getloadavg()[0]:.1f})")


def versions() -> str:
    restic = sh(f"{RESTIC} version").split()[1]
    pgbr = sh("pgbackrest version")
    pg = sh(f"{PG_BIN}/postgres --version")
    return f"restic {restic} ({RESTIC}); {pgbr}; {pg}; {os.cpu_count()} CPUs"


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(WORK, "postgres")
    scale, rows_mb = int(os.environ.get("BENCH_PGBENCH_SCALE", "50")), int(os.environ.get("BENCH_TTU_PG_MB", "300"))
    print(f"time-to-usable benchmark; {versions()}")
    doc = __doc__ or ""
    print("  " + doc[doc.index("Settings of every tool:"):doc.index("\nThe ratios")].replace("\n", "\n  "))
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (other work on the machine slows every case)")
    goals = Goals()
    try:
        with running(Instance(WORK / "target", free_port())) as target:
            bench_database("ttu_pgbench", lambda s: sh(f"pgbench {s.conn} -i -q -s {scale} ttu_pgbench"),
                           target, goals)
            bench_database("ttu_rows", lambda s: load_rows(s, "ttu_rows", rows_mb), target, goals)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    goals.show()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
