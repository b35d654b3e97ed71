"""Processes as streams: a dump process read as a file, a restore client written as a file.

Like restic's `--stdin-from-command`: stderr is drained in a thread into a ring buffer whose tail
becomes the error; success is decided at end of output (a non-zero exit raises from `read` at EOF, so
a repository writer never records a truncated snapshot); closing early kills the process group; a
deadline kills it too. Transfer layer: knows processes, not repositories.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO

from providers.databases.base import ProcessSpec, StreamFilter
from stashplan.errors import TransferError

TAIL_BYTES = 8192
ERROR_WORDS = re.compile(
    r"error|\bERR\b|WRONGTYPE|fatal|denied|failed|refused|could not|cannot", re.IGNORECASE
)


class OutputTail:
    """Drains a pipe in a daemon thread, keeping only the last TAIL_BYTES bytes."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self._thread.start()

    def _drain(self, pipe: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size - len(self._chunks[0]) >= TAIL_BYTES:
                    self._size -= len(self._chunks.popleft())

    def text(self, *, lines: int = 12, limit: int = 600, join_timeout: float = 2.0) -> str:
        """The tail on one line: from the first line that names an error among the last `lines`
        (or the last three lines when none does), cut to `limit` characters."""
        self._thread.join(join_timeout)
        raw = b"".join(self._chunks)[-TAIL_BYTES:].decode(errors="replace")
        kept = [ln.strip() for ln in raw.splitlines() if ln.strip()][-lines:]
        first = next((i for i, ln in enumerate(kept) if ERROR_WORDS.search(ln)), max(0, len(kept) - 3))
        out = " | ".join(kept[first:])
        return out if len(out) <= limit else out[: limit - 3] + "..."


class _Supervised:
    """A child process in its own process group, killed on close or when the deadline passes."""

    def __init__(self, spec: ProcessSpec, deadline: float | None, **popen: object) -> None:
        self.spec = spec
        self.deadline = deadline
        self.expired = False
        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
                list(spec.argv), env=spec.full_env(), start_new_session=True, bufsize=0, **popen
            )
        except OSError as exc:
            raise TransferError(f"cannot run {spec.name}: {exc.strerror or exc}") from None
        self._timer: threading.Timer | None = None
        if deadline is not None:
            self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Wait for exit within the deadline (killing at the deadline); returns the exit code."""
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._expire()
            return self.proc.wait()

    def failure(self, rc: int, tail: str) -> TransferError | None:
        if self.expired:
            return TransferError(f"deadline exceeded: {self.spec.name} was killed")
        if rc == 0:
            return None
        if self.spec.explain is not None and (explained := self.spec.explain(tail)):
            return TransferError(explained)
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        return TransferError(f"{self.spec.name} {how}" + (f": {tail}" if tail else ""))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)


class ProcessReader(io.RawIOBase):
    """The stdout of a dump process as a readable stream; raises TransferError at EOF if it failed."""

    def __init__(self, spec: ProcessSpec, *, deadline: float | None = None, empty_ok: bool = True) -> None:
        super().__init__()
        self._empty_ok = empty_ok  # False: a dump that wrote nothing fails
        self._child = _Supervised(
            spec, deadline, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self._child.proc.stdout is not None and self._child.proc.stderr is not None
        self._stdout = self._child.proc.stdout
        self._tail = OutputTail(self._child.proc.stderr)
        self._done = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._done:
            return 0
        n = self._stdout.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self.bytes_read += n
            return int(n)
        self._done = True
        error = self._child.failure(self._child.wait(), self._tail.text())
        if error is not None:
            raise error
        if not self.bytes_read and not self._empty_ok:
            raise TransferError(f"{self._child.spec.name} exited 0 but wrote nothing (a 0-byte dump is not a backup)")
        return 0

    def close(self) -> None:
        if not self.closed:
            self._child.stop()
            with contextlib.suppress(OSError):
                self._stdout.close()
        super().close()


class ProcessWriter(io.RawIOBase):
    """The stdin of a restore client as a writable stream; `finish()` closes it and checks the exit code."""

    def __init__(
        self, spec: ProcessSpec, *, deadline: float | None = None, stream_filter: StreamFilter | None = None
    ) -> None:
        super().__init__()
        self._child = _Supervised(
            spec, deadline, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self._child.proc.stdin is not None and self._child.proc.stdout is not None
        self._stdin = self._child.proc.stdin
        self._tail = OutputTail(self._child.proc.stdout)
        self._filter = stream_filter
        self._finished = False
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        chunk = self._filter.feed(bytes(data)) if self._filter else data
        self._send(chunk)
        self.bytes_written += size
        return size

    def _send(self, chunk: bytes | bytearray | memoryview) -> None:
        try:
            self._stdin.write(chunk)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            self._finished = True
            rc = self._child.wait()
            raise self._child.failure(rc, self._tail.text()) or TransferError(
                f"{self._child.spec.name} stopped reading its input"
            ) from None

    def finish(self) -> None:
        """End of input: flush the filter, close stdin, wait, and raise TransferError unless exit 0."""
        if self._finished:
            return
        if self._filter:
            self._send(self._filter.flush())
        with contextlib.suppress(BrokenPipeError, OSError):
            self._stdin.close()
        self._finished = True
        error = self._child.failure(self._child.wait(), self._tail.text())
        if error is not None:
            raise error

    def close(self) -> None:
        if not self.closed:
            self._child.stop()
            with contextlib.suppress(OSError):
                self._stdin.close()
        super().close()
