"""What the point-in-time recovery benchmarks share: private PostgreSQL 15 instances (initdb under bench-out/ on
free loopback ports, run by the postgres OS user), a stashplan repository that user can write, and `stashplan`
as that user runs it. Every instance started is stopped (immediate) and its folder removed on the way out,
also on SIGTERM. Not a benchmark itself (make bench runs bench_*.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from providers.storage.local import LocalStorage  # noqa: E402
from stashplan.repository.layout import Params  # noqa: E402
from stashplan.repository.repo import Repository  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
AS_ROOT = os.geteuid() == 0
AS_PG = "runuser -u postgres -- " if AS_ROOT else ""
PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(script: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(["bash", "-c", f"set -eo pipefail; {script}"], capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise SystemExit(f"{script[:300]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout.strip()


def stashplan_command() -> str:
    """`stashplan` as the postgres OS user runs this tree: our interpreter when that user may execute it, else
    the system Python 3 with this venv's packages on the path (the same minor version)."""
    if not AS_ROOT or subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", sys.executable]).returncode == 0:
        return f"env PYTHONPATH={shlex.quote(str(ROOT))} {shlex.quote(sys.executable)} -m stashplan"
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    return f"env PYTHONPATH={shlex.quote(f'{ROOT}:{site}')} /usr/bin/python3 -m stashplan"


def conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Work:
    """A folder under bench-out/ owned by the postgres user, holding every instance, socket and repository of
    one benchmark; `close` stops whatever still runs there and removes it."""

    def __init__(self, name: str) -> None:
        self.path = ROOT / "bench-out" / name
        self.close()
        self.path.mkdir(parents=True)
        if AS_ROOT:
            shutil.chown(self.path, "postgres")
        self.stashplan = stashplan_command()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    def close(self) -> None:
        for pid_file in self.path.glob("**/postmaster.pid") if self.path.exists() else ():
            Instance(pid_file.parent, 0, self.path).stop()
        shutil.rmtree(self.path, ignore_errors=True)

    def repository(self, name: str = "repo") -> str:
        """A fresh stashplan repository (`repo init` defaults) the postgres user may write; its password file
        is `password_file`. Returns the repository URL."""
        path = self.path / name
        shutil.rmtree(path, ignore_errors=True)
        Repository.init(LocalStorage(path), PASSWORD, Params()).close()
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        if AS_ROOT:
            subprocess.run(["chown", "-R", "postgres", str(path), str(self.password_file)], check=True)
        return f"local:{path}"

    @property
    def password_file(self) -> Path:
        return self.path / "repo-password"

    def pg(self, *args: str) -> str:
        """`stashplan pg ARGS` as the postgres user, as a shell command line."""
        return f"{AS_PG}{self.stashplan} pg " + " ".join(shlex.quote(a) for a in args)


class Instance:
    """A PostgreSQL 15 cluster run by the postgres OS user; its socket in the work folder, its log beside it."""

    def __init__(self, data: Path, port: int, sockets: Path) -> None:
        self.data, self.port, self.sockets = data, port, sockets
        self.conn = f"-h 127.0.0.1 -p {port} -U postgres"

    def initdb(self, **settings: str) -> None:
        sh(f"{AS_PG}{PG_BIN}/initdb -D {self.data} -U postgres -A trust -N")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{k} = {conf_quote(v)}\n" for k, v in settings.items())

    def start(self, *settings: str, timeout: int = 600) -> None:
        opts = shlex.quote(f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 " + " ".join(settings))
        sh(f"{AS_PG}{PG_BIN}/pg_ctl -D {self.data} -l {self.data}.log -w -t {timeout} -o {opts} start >/dev/null")

    def stop(self) -> None:
        subprocess.run(f"{AS_PG}{PG_BIN}/pg_ctl -D {self.data} -m immediate -w stop", shell=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def kill9(self) -> None:
        """SIGKILL the postmaster and every process it started, all at once (a lost node)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for p in [pid, *map(int, children)]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def sql(self, statement: str, db: str = "postgres") -> str:
        return sh(f"psql {self.conn} -d {db} -XAtq -v ON_ERROR_STOP=1 -c {shlex.quote(statement)}")

    def wait_promoted(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while sh(f"psql {self.conn} -d postgres -XAtq -c 'SELECT pg_is_in_recovery()' 2>/dev/null",
                 check=False) != "f":
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.data}: still in recovery; log: {self.log()[-2000:]}")
            time.sleep(0.05)

    def switch_wal(self, timeout: float = 300) -> None:
        """Close the current segment and wait until the archiver has archived it."""
        segment = self.sql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout
        while self.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment:
            if time.monotonic() > deadline:
                raise SystemExit(f"{segment} not archived: {self.sql('SELECT * FROM pg_stat_archiver')}")
            time.sleep(0.1)

    def log(self) -> str:
        path = Path(f"{self.data}.log")
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running(inst: Instance, *settings: str) -> Iterator[Instance]:
    """Start an initialized (or restored) instance; stopped (immediate) and removed on the way out."""
    try:
        inst.start(*settings)
        yield inst
    finally:
        inst.stop()
        shutil.rmtree(inst.data, ignore_errors=True)


def versions() -> str:
    return f"{sh('pgbackrest version')}; {sh(f'{PG_BIN}/postgres --version')}; {os.cpu_count()} CPUs"
