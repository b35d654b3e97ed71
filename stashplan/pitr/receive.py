"""`stashplan pg wal-receive`: pg_receivewal streams WAL over a replication slot into a local directory; every
completed segment and history file is pushed as `wal-push` does (idempotent), the partial segment every few
seconds (replaced), the slot's lag is logged and pushed to a Pushgateway; SIGTERM stops it after a last push.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import blake3

from stashplan import metrics
from stashplan.errors import StashplanError
from stashplan.pitr import receive_dir, walstore
from stashplan.pitr.slotlag import SlotLag, lag_registry, query_lag, system_identifier
from stashplan.pitr.walnames import WalKind, format_lsn, parse_wal_name, segment_number, segment_of
from stashplan.repository.repo import Repository

log = logging.getLogger(__name__)
SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")


@dataclass(frozen=True)
class Source:
    """The server to stream from; the password is PGPASSWORD (or ~/.pgpass), never an option."""

    host: str
    port: int
    user: str
    dbname: str = "postgres"


@dataclass(frozen=True)
class Options:
    slot: str
    directory: Path
    interval: float = 5.0  # seconds between sweeps (partial pushed, lag measured)
    pg_receivewal: str = "pg_receivewal"
    psql: str = "psql"
    pushgateway: str = ""
    segment_size: int = 16 * 1024 * 1024
    clear_foreign: bool = False  # a directory of its own: WAL another server left in it is removed, not refused


def check_slot(slot: str) -> str:
    if not SLOT_NAME.fullmatch(slot):
        raise ValueError(f"--slot {slot!r}: a replication slot name is 1-63 of a-z, 0-9 and _")
    return slot


def receivewal_argv(source: Source, options: Options, *, create: bool) -> tuple[str, ...]:
    """pg_receivewal creating the slot if it is missing (then exiting), or streaming through it into the
    directory, flushing and confirming each write at once (--synchronous: the slot's position is what is on
    disk here), never prompting for a password."""
    if create:
        return (options.pg_receivewal, *_slot_conn(source, options), "--create-slot", "--if-not-exists")
    return (options.pg_receivewal, *_slot_conn(source, options), "-D", str(options.directory), "--synchronous")


def _slot_conn(source: Source, options: Options) -> tuple[str, ...]:
    """pg_receivewal's connection to the server and its slot, never prompting for a password."""
    return ("-h", source.host, "-p", str(source.port), "-U", source.user, "-w", "-S", options.slot)


def drop_slot(source: Source, options: Options) -> None:
    """Drop the replication slot (the server then stops keeping WAL for it); StashplanError with pg_receivewal's
    message when it cannot (the slot is active again, the server is unreachable, the role may not)."""
    done = subprocess.run((options.pg_receivewal, *_slot_conn(source, options), "--drop-slot"),
                          capture_output=True, text=True)
    if done.returncode:
        raise StashplanError(f"pg_receivewal --drop-slot {options.slot}: {done.stderr.strip()}")


PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """In the child before exec: SIGINT when wal-receive dies (even by SIGKILL), so no orphaned pg_receivewal
    keeps the slot active and blocks the next run."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


class Receiver:
    """One sweep pushes what pg_receivewal has written since the last one; `run` supervises it."""

    def __init__(self, repo: Repository, source: Source, options: Options) -> None:
        self.repo, self.source, self.options = repo, source, options
        self._partial_digest: dict[str, str] = {}
        self._pushed: set[str] = set()  # completed files pushed by this run
        self.stop = threading.Event()
        self.caught_up: float | None = None  # Unix time up to which the repository held all the server's WAL

    def sweep(self) -> SlotLag | None:
        """Push every completed file not yet pushed, then the partial segment if it changed; returns the lag
        measured before reading the partial (its confirmed LSN is then known to be in the file). When the slot
        had confirmed all the server had written and the partial holding that point is in the repository, the
        sweep's start becomes `caught_up` (an idle server's archive is complete, not behind)."""
        started = time.time()
        lag = self._measure()
        done = sorted(self._completed())
        for path in done:
            if path.name in self._pushed:
                continue
            walstore.push(self.repo, path)  # the same content again is a no-op; a conflict stops us
            self._pushed.add(path.name)
            wal = parse_wal_name(path.name)
            if wal.kind is WalKind.SEGMENT:
                walstore.drop_partial(self.repo, wal.name)
            log.info("pushed %s", wal.name)
        segments = [p for p in done if parse_wal_name(p.name).kind is WalKind.SEGMENT]
        for path in segments[:-1]:  # the newest stays: pg_receivewal resumes after it
            path.unlink()
            self._pushed.discard(path.name)
        holds = [self._push_partial(path, lag) for path in self.options.directory.glob("*.partial")]
        if lag is not None and lag.confirmed is not None and lag.confirmed >= lag.current and lag.confirmed in holds:
            self.caught_up = started
        return lag

    def _completed(self) -> list[Path]:
        out = []
        for path in self.options.directory.iterdir():
            with contextlib.suppress(ValueError):
                if parse_wal_name(path.name).kind in (WalKind.SEGMENT, WalKind.HISTORY) and path.is_file():
                    out.append(path)
        return out

    def _push_partial(self, path: Path, lag: SlotLag | None) -> int | None:
        """Store the partial segment unless the repository has it as it is; the confirmed LSN it is known to
        hold (it was read after the lag was measured), or None."""
        try:
            written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            data = path.read_bytes()
        except FileNotFoundError:
            return None  # completed meanwhile: the next sweep pushes the whole segment
        wal = parse_wal_name(path.name)
        reached = None
        if lag is not None and lag.confirmed is not None:
            first = segment_number(wal.segment, self.options.segment_size) * self.options.segment_size
            if segment_of(lag.confirmed, self.options.segment_size) * self.options.segment_size == first:
                reached = lag.confirmed
        digest = blake3.blake3(data).hexdigest()
        if self._partial_digest.get(path.name) == digest:
            return reached  # stored before with this very content
        walstore.store_partial(self.repo, path.name, data, written, reached)
        self._partial_digest = {path.name: digest}
        log.debug("pushed %s (WAL up to at least %s)", path.name, format_lsn(reached) if reached else "?")
        return reached

    def _measure(self) -> SlotLag | None:
        try:
            lag = query_lag(self.options.psql, self.source, self.options.slot)
        except StashplanError as exc:
            log.warning("slot %s: lag not measured: %s", self.options.slot, exc)
            return None
        if self.options.pushgateway:
            try:
                registry = lag_registry(
                    self.source.host, self.source.port, self.options.slot, lag, time.time()
                )
                metrics.push(self.options.pushgateway, f"pg-wal-receive-{self.options.slot}", registry)
            except StashplanError as exc:
                log.warning("%s", exc)
        return lag

    def run(self) -> None:
        """Create the slot if missing, stream until SIGTERM (or SIGINT), sweeping every interval; a last
        sweep after pg_receivewal stops. StashplanError when pg_receivewal ends on its own."""
        self.options.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_directory()
        created = subprocess.run(
            receivewal_argv(self.source, self.options, create=True), capture_output=True, text=True
        )
        if created.returncode:
            raise StashplanError(f"pg_receivewal --create-slot {self.options.slot}: {created.stderr.strip()}")
        proc = subprocess.Popen(
            receivewal_argv(self.source, self.options, create=False), preexec_fn=_end_with_parent
        )
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            last_log = 0.0
            while not self.stop.wait(self.options.interval) and proc.poll() is None:
                lag = self.sweep()
                if lag is not None and time.monotonic() - last_log >= 60:
                    log.info("slot %s: %d bytes behind the server", self.options.slot, lag.bytes)
                    last_log = time.monotonic()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # pg_receivewal flushes and exits
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.sweep()
        if not self.stop.is_set():
            raise StashplanError(f"pg_receivewal exited with code {proc.returncode} (see its messages above)")
        log.info("stopped; the partial segment is pushed")

    def _check_directory(self) -> None:
        """Refuse (or, for a directory of its own, empty) a directory holding another server's WAL."""
        sysid = system_identifier(self.options.psql, self.source)
        others = receive_dir.foreign(self.options.directory, sysid)
        if not others:
            return
        found = receive_dir.system_identifier_of(others[-1])
        if not self.options.clear_foreign:
            raise StashplanError(
                f"{self.options.directory} holds WAL of another server (system identifier {found}, not {sysid} "
                f"of {self.source.host}:{self.source.port}, in {others[-1].name}): pg_receivewal would resume from "
                "it; empty the directory or give another --directory"
            )
        log.warning("%s held WAL of another server (system identifier %s, this one %s): removed",
                    self.options.directory, found, sysid)  # fmt: skip
        for path in receive_dir.wal_files(self.options.directory):
            path.unlink()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stop.set()
