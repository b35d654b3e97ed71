"""Content-defined chunking of a byte stream with FastCDC (the `fastcdc` package's Cython build).

A reader thread fills a small ring of reused buffers (so the producer of the stream, e.g. pg_dump on
a pipe, never waits while blocks are being chunked) and feeds `on_block` (the stream hash) in order.
Each block is cut with FastCDC and its last, possibly truncated, chunk is carried into the front of
the next buffer, so the cuts equal those of chunking the whole stream at once. Memory is fixed:
SLOTS x (max chunk size + `read_size`), allocated once. A stream may also name places where a chunk must end
(`forced_cuts`: a tar's member starts), so that each member is chunked, and deduplicated, on its own.
"""

from __future__ import annotations

import fcntl
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from fastcdc.fastcdc_cy import fastcdc_cy

from stashplan.repository.layout import Params

READ_SIZE = 2 * 1024 * 1024  # at least; `read_size`
SLOTS = 3  # one being chunked, one waiting for its last chunks to be sealed, one being read
PIPE_SIZE = 1024 * 1024  # Linux's default limit for unprivileged processes (/proc/sys/fs/pipe-max-size)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CutsAt(Protocol):
    """A stream that knows where chunks must end: `forced_cuts(start, end)` lists the stream offsets in
    (start, end) at which a chunk must end, for bytes the stream has already returned (ascending)."""

    def forced_cuts(self, start: int, end: int) -> list[int]: ...


def cut_points(data: memoryview, params: Params) -> list[int]:
    """The end offsets of the FastCDC chunks of `data` (the last one is len(data))."""
    if not len(data):
        return []
    return [
        c.offset + c.length for c in fastcdc_cy(data, params.chunk_min, params.chunk_avg, params.chunk_max)
    ]


def segmented_cut_points(data: memoryview, params: Params, forced: list[int]) -> list[int]:
    """cut_points of each piece of `data` between the `forced` offsets (relative, ascending, inside data)."""
    ends: list[int] = []
    prev = 0
    for cut in [*forced, len(data)]:
        if cut > prev:
            ends += [prev + end for end in cut_points(data[prev:cut], params)]
            prev = cut
    return ends


def read_size(params: Params) -> int:
    """Bytes read per block: 4 average chunks or more. The last chunk of a block is carried into the next and
    scanned again, so blocks of about one chunk (1 MiB chunks in 2 MiB blocks) scanned most bytes twice."""
    return max(READ_SIZE, 4 * params.chunk_avg)


def widen_pipe(stream: Readable) -> None:
    """Let a pipe (`pg_dump | stashplan`) buffer 1 MiB instead of 64 KiB: the producer and this reader
    then wake each other 16 times less often (context switches were 12% of a backup's CPU)."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError, ValueError):
        pass  # not a pipe, or the limit is lower here: the default buffer works, just slower


def fill(stream: Readable, view: memoryview) -> int:
    """Fill `view` from `stream` (readinto when it has one); fewer bytes than asked only at EOF."""
    readinto = getattr(stream, "readinto", None)
    total = 0
    while total < len(view):
        if readinto is not None:
            try:
                n = readinto(view[total:]) or 0
            except NotImplementedError:  # io.RawIOBase subclasses that only implement read()
                readinto = None
                continue
        else:
            data = stream.read(len(view) - total)
            n = len(data)
            view[total : total + n] = data
        if not n:
            break
        total += n
    return total


class _Reader:
    """The reader thread: fills free slots at offset `reserve`, reports (slot, bytes, error) in order."""

    def __init__(
        self,
        stream: Readable,
        buffers: list[bytearray],
        reserve: int,
        block: int,
        on_block: Callable[[memoryview], None] | None,
    ) -> None:
        self.free: queue.Queue[int | None] = queue.Queue()
        self.filled: queue.Queue[tuple[int, int, BaseException | None]] = queue.Queue()
        for slot in range(len(buffers)):
            self.free.put(slot)
        self._args = (stream, buffers, reserve, block, on_block)
        self.thread = threading.Thread(target=self._run, name="stashplan-read", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream, buffers, reserve, block, on_block = self._args
        while True:
            slot = self.free.get()
            if slot is None:
                return
            try:
                view = memoryview(buffers[slot])[reserve : reserve + block]
                got = fill(stream, view)
                if got and on_block is not None:
                    on_block(view[:got])
            except BaseException as exc:
                self.filled.put((slot, 0, exc))
                return
            self.filled.put((slot, got, None))
            if got < block:
                return

    def stop(self) -> None:
        self.free.put(None)


def chunk_stream(
    stream: Readable,
    params: Params,
    on_block: Callable[[memoryview], None] | None = None,
    before_reuse: Callable[[int], None] | None = None,
) -> Iterator[tuple[memoryview, int]]:
    """Yield (chunk, slot) in stream order; `on_block` sees every block read, in order (reader thread).

    A chunk is a view into ring buffer `slot`, valid until the slot is handed back for refilling;
    `before_reuse(slot)` is called first, so the caller can finish every chunk it holds from that slot.
    A failure of the stream is raised here, in the consuming thread.
    """
    reserve = params.chunk_max
    widen_pipe(stream)
    block = read_size(params)
    buffers = [bytearray(reserve + block) for _ in range(SLOTS)]
    reader = _Reader(stream, buffers, reserve, block, on_block)
    carry: memoryview | None = None
    previous: int | None = None
    cuts_at = getattr(stream, "forced_cuts", None)
    offset = 0  # stream offset of the first byte of `data` below
    try:
        while True:
            slot, got, error = reader.filled.get()
            if error is not None:
                raise error
            view = memoryview(buffers[slot])
            start = reserve
            if carry is not None:
                start = reserve - len(carry)
                view[start:reserve] = carry
                carry = None
            eof = got < block
            data = view[start : reserve + got]
            if cuts_at is None:
                ends = cut_points(data, params)
            else:
                forced = [c - offset for c in cuts_at(offset, offset + len(data))]
                ends = segmented_cut_points(data, params, forced)
            if not eof:
                # The last chunk may have been cut by the end of the block, not by content: carry it over.
                ends.pop()
            pos = 0
            for end in ends:
                yield data[pos:end], slot
                pos = end
            if previous is not None:
                if before_reuse is not None:
                    before_reuse(previous)
                reader.free.put(previous)
            if eof:
                return
            carry = data[pos:]
            offset += pos
            previous = slot
    finally:
        reader.stop()
