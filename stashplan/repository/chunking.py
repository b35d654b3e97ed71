"""Content-defined chunking of a byte stream with FastCDC (the `fastcdc` package's Cython build).

Boundaries depend only on content: the stream is read in large blocks into a small ring of reused
buffers, each block is cut with FastCDC, and the last (possibly truncated) chunk is carried into the
next block, so the cuts equal those of chunking the whole stream at once. Memory is fixed:
`slots` x (READ_SIZE + max chunk size), allocated once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from fastcdc.fastcdc_cy import fastcdc_cy

from stashplan.repository.layout import Params

READ_SIZE = 4 * 1024 * 1024
SLOTS = 2  # the sealing window is far shorter than a block, so two rarely stall


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def cut_points(data: memoryview, params: Params) -> list[int]:
    """The end offsets of the FastCDC chunks of `data` (the last one is len(data))."""
    if not len(data):
        return []
    return [
        c.offset + c.length for c in fastcdc_cy(data, params.chunk_min, params.chunk_avg, params.chunk_max)
    ]


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


def chunk_stream(
    stream: Readable,
    params: Params,
    on_block: Callable[[memoryview], None] | None = None,
    before_reuse: Callable[[int], None] | None = None,
) -> Iterator[tuple[memoryview, int]]:
    """Yield (chunk, slot) in stream order; `on_block` sees every block read, in order.

    A chunk is a view into ring buffer `slot`, valid until that slot is refilled; `before_reuse(slot)`
    is called first, so the caller can finish every chunk it still holds from that slot.
    """
    size = READ_SIZE + params.chunk_max
    buffers: list[bytearray] = []
    carry: memoryview | None = None
    slot = 0
    while True:
        if len(buffers) <= slot:
            buffers.append(bytearray(size))
        elif before_reuse is not None:
            before_reuse(slot)
        view = memoryview(buffers[slot])
        kept = 0
        if carry is not None:
            kept = len(carry)
            view[:kept] = carry
        got = fill(stream, view[kept : kept + READ_SIZE])
        if got and on_block is not None:
            on_block(view[kept : kept + got])
        eof = got < READ_SIZE
        data = view[: kept + got]
        ends = cut_points(data, params)
        if not eof:
            # The last chunk may have been cut by the end of the block, not by content: carry it over.
            ends.pop()
        start = 0
        for end in ends:
            yield data[start:end], slot
            start = end
        if eof:
            return
        carry = data[start:]
        slot = (slot + 1) % SLOTS
