"""Run the recovery a restored data directory is set up for, before anyone relies on it: PostgreSQL of the
Task's version started on the directory on a private Unix socket only (archiving off), watched until it has
promoted (or failed), checked to have stopped at the target, stopped cleanly, and the recovery settings removed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stashplan.errors import StashplanError
from stashplan.pitr.recovery_conf import AUTO_CONF, SIGNAL_FILE
from stashplan.pitr.spool_names import SPOOL_DIR
from stashplan.pitr.window import Target, TargetKind

log = logging.getLogger(__name__)

PG_LIB = Path("/usr/lib/postgresql")
POLL = 0.2  # seconds between looks at the server
PROGRESS_EVERY = 10.0  # seconds between "restored log file" lines relayed to the Job's log
# Server log lines worth relaying as the recovery's phases (the rest stays in the server's own log).
_PHASES = re.compile(
    r"starting (point-in-time|archive) recovery|redo starts at|consistent recovery state reached|"
    r"recovery stopping|redo done at|selected new timeline ID|archive recovery complete|"
    r"ready to accept connections|FATAL|PANIC"
)
READY = "database system is ready to accept connections"
_MISSING = re.compile(r"^([0-9A-F]{24}(?:\.partial)?): not in the archive$", re.M)


class RecoveryFailed(StashplanError):
    """Recovery did not reach the target: the server stopped, ended early, or did not finish in time."""


@dataclass(frozen=True)
class Recovered:
    stop: str  # the server's "recovery stopping ..." line ("" for --latest: every archived segment replayed)
    seconds: float


def server_bin(version: str) -> Path:
    """The directory of PostgreSQL `version`'s server programs (postgres, pg_ctl, pg_controldata)."""
    found = PG_LIB / version / "bin"
    if not re.fullmatch(r"\d+", version) or not (found / "postgres").is_file():
        have = sorted(p.name for p in PG_LIB.glob("*") if (p / "bin" / "postgres").is_file()) if PG_LIB.is_dir() else []
        raise RecoveryFailed(
            f"PostgreSQL {version or '?'} server programs not found in {found} (installed: {', '.join(have) or 'none'})"
        )
    return found


def recover(
    pgdata: Path,
    target: Target,
    window: str,
    *,
    bin_dir: Path,
    env: Mapping[str, str],
    owner: tuple[int, int] | None,
    settings: Sequence[str],
    deadline: float | None = None,
) -> Recovered:
    """Start the server on `pgdata` (as `owner` (uid, gid) when given: PostgreSQL refuses root), wait until it
    has left recovery, check it stopped at `target`, stop it with a fast shutdown and remove the appended
    recovery `settings` from postgresql.auto.conf. RecoveryFailed naming the cause and the `window` otherwise."""
    started = time.monotonic()
    private = Path(tempfile.mkdtemp(prefix="stashplan-recover-"))
    server_log = private / "server.log"
    try:
        argv = _server_argv(bin_dir, pgdata, private)
        if owner is not None:
            os.chown(private, *owner)
        log.info("recovery of %s: starting PostgreSQL (%s) on a private socket", pgdata, bin_dir.parent.name)
        with server_log.open("w") as out:
            server = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=pgdata,
                **_as(owner),
            )
        try:
            _until_promoted(server, pgdata, bin_dir, server_log, window, deadline)
            text = server_log.read_text(errors="replace")
            stop = next((ln for ln in reversed(text.splitlines()) if "recovery stopping" in ln), "")
            if target.kind is not TargetKind.LATEST and not stop:
                raise RecoveryFailed(
                    f"recovery of {pgdata} ended without reaching the target{_missing(text)}; "
                    f"recoverable window {window}"
                )
            _run([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "300", "stop"], env, owner)
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        _relay(server_log.read_text(errors="replace"), 0, final=True)
        _clean(pgdata, settings)
        took = time.monotonic() - started
        log.info("recovery of %s: promoted and stopped cleanly in %.1f s; %s", pgdata, took, _brief(stop))
        return Recovered(_brief(stop), took)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _server_argv(bin_dir: Path, pgdata: Path, private: Path) -> list[str]:
    """postgres with a private, empty configuration file (postgresql.auto.conf of the directory still applies:
    it holds the recovery settings), no TCP, a socket and an hba that admits no one in `private`, no archiving
    (the copy must not push its new timeline into the repository), no hot standby (so a primary's
    max_connections and the like need not be matched)."""
    (private / "postgresql.conf").write_text("# stashplan: recovery run only\n")
    (private / "pg_hba.conf").write_text("local all all reject\n")
    (private / "pg_ident.conf").write_text("")
    settings = {
        "hba_file": str(private / "pg_hba.conf"),
        "ident_file": str(private / "pg_ident.conf"),
        "listen_addresses": "",
        "unix_socket_directories": str(private),
        "archive_mode": "off",
        "hot_standby": "off",
        "logging_collector": "off",
        "log_destination": "stderr",
        "ssl": "off",
        "lc_messages": "C",  # the log is read for the phases
    }
    argv = [str(bin_dir / "postgres"), f"--config-file={private / 'postgresql.conf'}", "-D", str(pgdata)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def _as(owner: tuple[int, int] | None) -> dict:
    return {} if owner is None else {"user": owner[0], "group": owner[1], "extra_groups": []}


def _run(argv: list[str], env: Mapping[str, str], owner: tuple[int, int] | None) -> None:
    done = subprocess.run(argv, env=dict(env), capture_output=True, text=True, **_as(owner))
    if done.returncode != 0:
        raise RecoveryFailed(f"{Path(argv[0]).name} {argv[-1]} exited {done.returncode}: {done.stderr.strip()[-500:]}")


def _until_promoted(server: subprocess.Popen, pgdata: Path, bin_dir: Path, server_log: Path, window: str,
                    deadline: float | None) -> None:
    """Wait until the server says it is ready for connections (with hot_standby off: only once recovery has
    ended and it promoted) and pg_control says "in production": pg_is_in_recovery() false, told without a
    connection (no role or password of the restored server is known here). pg_control alone is not enough: a
    base backup's copy says "in production" until the server starts recovering."""
    seen, last_progress, text = 0, 0.0, ""
    with server_log.open(errors="replace") as log_file:
        while True:
            text += log_file.read()  # only what the server wrote since the last look
            seen, last_progress = _relay(text, seen, last_progress=last_progress)
            if server.poll() is not None:
                text += log_file.read()  # its last words
                raise RecoveryFailed(
                    f"recovery of {pgdata} failed: {_cause(text)}{_missing(text)}; recoverable window {window}"
                )
            if READY in text and _state(bin_dir, pgdata) == "in production":
                return
            if deadline is not None and time.monotonic() > deadline:
                raise RecoveryFailed(f"recovery of {pgdata} did not finish before the session's deadline; "
                                     f"last: {_last_phase(text)}; recoverable window {window}")
            time.sleep(POLL)


def _state(bin_dir: Path, pgdata: Path) -> str:
    done = subprocess.run([str(bin_dir / "pg_controldata"), str(pgdata)], capture_output=True, text=True,
                          env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})
    found = re.search(r"^Database cluster state:\s*(.+)$", done.stdout, re.M)
    return found.group(1).strip() if found else ""


def _relay(text: str, seen: int, *, last_progress: float = 0.0, final: bool = False) -> tuple[int, float]:
    """Log the new phase lines of the server's log (and a "restored log file" line every PROGRESS_EVERY s)."""
    cut = text.rfind("\n") + 1 if not final else len(text)
    now = time.monotonic()
    for line in text[seen:cut].splitlines():
        if _PHASES.search(line):
            log.info("recovery: %s", _brief(line))
        elif "restored log file" in line and now - last_progress >= PROGRESS_EVERY:
            log.info("recovery: %s", _brief(line))
            last_progress = now
    return max(seen, cut), last_progress


def _brief(line: str) -> str:
    """A server log line without its timestamp and pid prefix."""
    return re.sub(r"^\S+ \S+ \S+ \[\d+\] ", "", line).strip()


def _cause(text: str) -> str:
    lines = [_brief(ln) for ln in text.splitlines() if "FATAL" in ln or "PANIC" in ln]
    return lines[0] if lines else f"the server exited; last: {_last_phase(text)}"


def _last_phase(text: str) -> str:
    lines = [_brief(ln) for ln in text.splitlines() if _PHASES.search(ln) or "restored log file" in ln]
    return lines[-1] if lines else "nothing logged"


def _missing(text: str) -> str:
    """Where the archive ran out: the last WAL segment restore_command did not find (history files aside)."""
    names = _MISSING.findall(text)
    return f" (WAL segment {names[-1]} is not in the archive)" if names else ""


def _clean(pgdata: Path, settings: Sequence[str]) -> None:
    """Remove what only the recovery needed: the appended settings (the last block holding exactly them), the
    prefetch spool, and recovery.signal (the server removes it when it promotes)."""
    conf = pgdata / AUTO_CONF
    text = conf.read_text()
    block = "\n" + "\n".join(settings) + "\n"
    at = text.rfind(block)
    if settings and at < 0:
        raise RecoveryFailed(f"{conf}: the recovery settings appended to it were changed; remove them by hand")
    if settings:
        conf.write_text(text[:at] + text[at + len(block):])  # the same file: its owner and mode stay
    for _ in range(50):  # a prefetching child may still be finishing a file in it
        shutil.rmtree(pgdata / SPOOL_DIR, ignore_errors=True)
        if not (pgdata / SPOOL_DIR).exists():
            break
        time.sleep(POLL)
    (pgdata / SIGNAL_FILE).unlink(missing_ok=True)
