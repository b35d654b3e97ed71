"""A plain pg_dump restored over N psql connections, as `pg_restore -j` does: pre-data on one connection, table
data over all (COPY pieces to the least busy), then indexes and constraints over all, FKs after them, anything
else alone and in order. Streams with bounded queues; no copy of the dump on disk. Transfer layer: processes.
The clients may bring another splitter and a filter per connection (MySQL: `providers.databases.mysql_parallel`).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import cache
from typing import BinaryIO

from providers.databases.base import (
    ConfineFilter,
    Connection,
    ParallelClients,
    ProcessSpec,
    Splitter,
    TaskParams,
)
from providers.databases.pg_parallel import (
    PIECE_BYTES,
    DataBegin,
    DataBytes,
    DataEnd,
    Event,
    Every,
    PlainDumpSplitter,
    Post,
    Serial,
)
from providers.databases.postgres import PostgresProvider
from stashplan.errors import TransferError
from stashplan.transfer.pipe import OutputTail

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes gathered before a queue put (one writev into psql's 1 MiB pipe)
QUEUE_CHUNKS = 8  # per connection: 8 MiB in flight at most (+ the read buffers their views keep)
POST_HELD = 32 << 20  # post-data entries held before they are run (they are small; this bounds a strange dump)


Buffer = bytes | memoryview
Put = Callable[["_Connection", "list[Buffer] | None"], None]


def _write_all(fd: int, bufs: list[Buffer]) -> None:
    """Write every buffer to `fd` with as few writev calls as the pipe takes."""
    views = [memoryview(b) for b in bufs if len(b)]
    while views:
        n = os.writev(fd, views[:1024])  # IOV_MAX
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


@cache
def psql_has_restrict(program: str = "psql") -> bool:
    """psql 13.22, 14.19, 15.14, 16.10, 17.6, 18 and later know `\\restrict` (no meta-commands from the dump)."""
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    m = re.search(r"(\d+)\.(\d+)", out)
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2))
    return major >= 18 or minor >= {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}.get(major, 10**6)


class _Connection:
    """One psql reading its stdin through a bounded queue; a marker query after each unit reports its end."""

    def __init__(self, spec: ProcessSpec, index: int, marker: bytes, cond: threading.Condition,
                 stream_filter: ConfineFilter | None = None, padding: int = 0) -> None:
        self.name = f"{spec.name} (connection {index + 1})"
        self._marker, self._cond = marker, cond
        self._filter, self._padding = stream_filter, padding
        try:
            self.proc = subprocess.Popen(list(spec.argv), env=spec.full_env(), start_new_session=True, bufsize=0,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise TransferError(f"cannot run {spec.name}: {exc.strerror or exc}") from None
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        with contextlib.suppress(OSError):  # fewer, larger writes into psql (Linux: F_SETPIPE_SZ)
            fcntl.fcntl(self.proc.stdin.fileno(), 1031, 1 << 20)
        self.tail = OutputTail(self.proc.stderr)
        self.queue: queue.Queue[list[Buffer] | None] = queue.Queue(QUEUE_CHUNKS)
        self.sent = self.done = self.outstanding = 0
        self.sizes: deque[int] = deque()
        self.exited = False
        self._buf: list[Buffer] = []
        self._buffered = 0
        self._unit = 0
        threading.Thread(target=self._write, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def _write(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        fd = stdin.fileno()
        broken = False
        while (chunk := self.queue.get()) is not None:
            if not broken:
                try:
                    _write_all(fd, chunk)
                except (BrokenPipeError, ConnectionResetError, OSError, ValueError):
                    broken = True  # keep taking chunks so the reader never blocks; the exit is reported
        with contextlib.suppress(OSError):
            stdin.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.rstrip(b"\r\n") == self._marker:
                with self._cond:
                    self.done += 1
                    self.outstanding -= self.sizes.popleft()
                    self._cond.notify_all()
        with self._cond:
            self.exited = True
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        return self.done == self.sent and not self._unit

    def send(self, data: Buffer, put: Put) -> None:
        self._unit += len(data)
        if self._filter is not None:
            data = self._filter.feed(bytes(data))
        self._buf.append(data)
        self._buffered += len(data)
        if self._buffered >= CHUNK:
            self._flush(put)

    def end_unit(self, put: Put) -> None:
        """Close the open unit with its marker query (its completion is counted when psql prints it)."""
        if not self._unit:
            return
        end = b"\nSELECT '" + self._marker + b"';\n" + b"\n" * self._padding
        if self._filter is not None:
            end = self._filter.feed(end)
            if self._filter.holding:
                raise TransferError("the dump does not end a table's section where a statement ends (a parallel "
                                    "restore cuts it there); restore it with --jobs 1")
        self._buf.append(end)
        with self._cond:
            self.sent += 1
            self.sizes.append(self._unit)
            self.outstanding += self._unit
        self._unit = 0
        self._flush(put)

    def close_filter(self, put: Put) -> None:
        """The worker filter's last bytes (after the last unit: whitespace), then the end of its input."""
        if self._filter is not None:
            self._buf.append(self._filter.flush())
        self._flush(put)
        put(self, None)

    def _flush(self, put: Put) -> None:
        if self._buf:
            put(self, self._buf)  # written with one writev: the rows' views are never copied
            self._buf, self._buffered = [], 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)


class ParallelWriter(io.RawIOBase):
    """Writable like the ProcessWriter it stands in for: `write` the dump, `finish()` to end and check.

    The dump passes `clients.make_filter`'s filter, if any, before it is cut (a single-database pg_dump holds no
    role lines: no SuperuserLineFilter); meta-command lines outside COPY data go to
    `clients.check_meta` (PostgreSQL: PsqlConfine's rules, as in a serial restore), and every connection starts
    with its own `\\restrict` (psql versions that know it)."""

    def __init__(self, clients: ParallelClients, *, deadline: float | None = None,
                 piece_bytes: int = PIECE_BYTES) -> None:
        super().__init__()
        self._split: Splitter = (clients.make_splitter() if clients.make_splitter
                                 else PlainDumpSplitter(piece_bytes, clients.check_meta))
        self._filter = clients.make_filter() if clients.make_filter else None
        self._deadline = deadline
        self._cond = threading.Condition()
        marker = b"stashplan-unit-done-" + secrets.token_hex(12).encode()
        self._conns: list[_Connection] = []
        try:
            for i in range(max(1, clients.jobs)):
                conn = _Connection(clients.worker, i, marker, self._cond,
                                   clients.worker_filter() if clients.worker_filter else None, clients.unit_padding)
                self._conns.append(conn)
                if os.path.basename(clients.worker.argv[0]) == "psql" and psql_has_restrict(clients.worker.argv[0]):
                    conn.send(b"\\restrict " + secrets.token_hex(16).encode() + b"\n", self._put)
        except BaseException:
            self.close()
            raise
        self._mode = "serial"
        self._current: _Connection | None = self._conns[0]
        self._posts: list[Post] = []
        self._post_bytes = 0
        self._finished = False
        self._turn = 0
        self.bytes_written = 0
        self.loaded_by: dict[str, set[int]] = {}  # table -> connections (0-based) of its pieces after the first

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        chunk = bytes(data) if self._filter is None else self._filter.feed(bytes(data))
        self._run(self._split.feed(chunk))
        self.bytes_written += size
        return size

    def finish(self) -> None:
        """End of the dump: run what is left, wait for every connection, raise TransferError unless all exit 0."""
        if self._finished:
            return
        if self._filter is not None:
            self._run(self._split.feed(self._filter.flush()))
        self._run(self._split.flush())
        self._run_posts()
        self._barrier()
        self._finished = True
        if self._split.note:
            log.warning("parallel restore: %s", self._split.note)
        for conn in self._conns:
            conn.close_filter(self._put)
        for conn in self._conns:
            try:
                rc = conn.proc.wait(None if self._deadline is None else max(0.0, self._deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._kill_all()
                raise TransferError("deadline exceeded: psql was killed") from None
            if rc != 0:
                raise self._failure(conn)

    def close(self) -> None:
        if not self.closed:
            for conn in self._conns:
                conn.kill()
                with contextlib.suppress(queue.Full):
                    conn.queue.put_nowait(None)
        super().close()

    # --- events -----------------------------------------------------------------------------------------

    def _run(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, DataBytes):
                assert self._current is not None
                self._current.send(ev.data, self._put)
            elif isinstance(ev, Post):
                self._posts.append(ev)
                self._post_bytes += len(ev.text)
                if self._post_bytes > POST_HELD:
                    self._run_posts()
            elif isinstance(ev, Every):
                for conn in self._conns:
                    conn.send(ev.data, self._put)
            elif isinstance(ev, Serial):
                self._run_posts()
                if self._mode != "serial":
                    self._barrier()
                    self._mode, self._current = "serial", self._conns[0]
                self._conns[0].send(ev.data, self._put)
            elif isinstance(ev, DataBegin):
                self._run_posts()
                if self._mode == "serial":
                    self._barrier()  # the tables exist before any data goes to another connection
                self._mode = "data"
                self._current = self._least_busy(ev.table)
                self._current.send(ev.prefix, self._put)
            elif isinstance(ev, DataEnd) and self._current is not None:
                self._current.end_unit(self._put)

    def _least_busy(self, table: str) -> _Connection:
        """The connection with the fewest bytes outstanding; on a tie the next in turn, so that the pieces of
        one table go to every connection even when each finishes before the next is cut."""
        n = len(self._conns)
        with self._cond:
            k = min(range(n), key=lambda i: (self._conns[i].outstanding, (i - self._turn) % n))
        self._turn = k + 1
        self.loaded_by.setdefault(table, set()).add(k)
        return self._conns[k]

    def _barrier(self) -> None:
        for conn in self._conns:
            conn.end_unit(self._put)
        self._wait(lambda: all(c.done == c.sent for c in self._conns))

    def _wait(self, ready: Callable[[], bool]) -> None:
        with self._cond:
            while not ready():
                self._check_locked()
                self._cond.wait(0.2)

    def _check_locked(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            self._kill_all()
            raise TransferError("deadline exceeded: psql was killed")
        for conn in self._conns:
            if conn.exited or conn.proc.poll() is not None:
                self._kill_all()
                raise self._failure(conn)

    def _put(self, conn: _Connection, chunk: list[Buffer] | None) -> None:
        while True:
            try:
                conn.queue.put(chunk, timeout=0.2)
                return
            except queue.Full:
                with self._cond:
                    self._check_locked()

    def _failure(self, conn: _Connection) -> TransferError:
        rc = conn.proc.wait()
        tail = conn.tail.text()
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        return TransferError(f"{conn.name} {how}" + (f": {tail}" if tail else ""))

    def _kill_all(self) -> None:
        for conn in self._conns:
            conn.kill()

    # --- post-data ----------------------------------------------------------------------------------------

    def _run_posts(self) -> None:
        """Run the held post-data entries: consecutive "index" (or "fk") entries side by side, never two on one
        table at once, the largest table first; a "serial" entry alone, after all before it."""
        if not self._posts:
            return
        posts, self._posts, self._post_bytes = self._posts, [], 0
        self._barrier()
        self._mode = "post"
        i = 0
        while i < len(posts):
            j = i + 1
            while j < len(posts) and posts[i].cls != "serial" and posts[j].cls == posts[i].cls:
                j += 1
            if posts[i].cls == "serial":
                self._conns[0].send(posts[i].text, self._put)
                self._barrier()
            else:
                self._side_by_side(posts[i:j])
            i = j

    def _side_by_side(self, group: list[Post]) -> None:
        size = self._split.table_bytes
        todo = sorted(group, key=lambda p: -max((size.get(t, 0) for t in p.locks), default=0))
        running: dict[int, frozenset[str]] = {}
        while todo or running:
            for k, conn in enumerate(self._conns):
                if k in running or not conn.idle:
                    continue
                busy = frozenset().union(*running.values())
                pick = next((p for p in todo if not p.locks & busy), None)
                if pick is None:
                    break
                todo.remove(pick)
                running[k] = pick.locks
                conn.send(pick.text, self._put)
                conn.end_unit(self._put)
            if running:
                self._wait(lambda: any(self._conns[k].done == self._conns[k].sent for k in running))
                for k in [k for k in running if self._conns[k].done == self._conns[k].sent]:
                    del running[k]


def restore_plain_dump(source: BinaryIO, *, host: str, port: int, username: str, dbname: str, jobs: int,
                       deadline: float | None = None, piece_bytes: int = PIECE_BYTES) -> int:
    """Read a plain pg_dump from `source` into `dbname` over `jobs` connections; returns the bytes read."""
    conn = Connection(scheme="postgres", host=host, port=port, database=dbname, query={}, username=username,
                      password=os.environ.get("PGPASSWORD", ""))
    clients = PostgresProvider().parallel_clients(conn, TaskParams(jobs=jobs))
    with ParallelWriter(clients, deadline=deadline, piece_bytes=piece_bytes) as writer:
        while chunk := source.read(1 << 20):
            writer.write(chunk)
        writer.finish()
        return writer.bytes_written
