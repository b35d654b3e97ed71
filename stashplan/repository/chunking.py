"""Content-defined chunking of a byte stream with FastCDC (the `fastcdc` package's Cython build).

Boundaries depend only on content: the stream is read in large blocks, each block is cut with FastCDC,
and the last (possibly truncated) chunk is carried into the next block, so the cuts equal those of
chunking the whole stream at once. Memory is bounded by block size + max chunk size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastcdc.fastcdc_cy import fastcdc_cy

from stashplan.repository.layout import Params

READ_SIZE = 4 * 1024 * 1024


def cut_points(data: memoryview, params: Params) -> list[int]:
    """The end offsets of the FastCDC chunks of `data` (the last one is len(data))."""
    if not len(data):
        return []
    ends = []
    for chunk in fastcdc_cy(data, params.chunk_min, params.chunk_avg, params.chunk_max):
        ends.append(chunk.offset + chunk.length)
    return ends


def chunk_stream(
    read: Callable[[int], bytes], params: Params, on_block: Callable[[bytes], None] | None = None
) -> Iterator[memoryview]:
    """Yield the chunks of the stream behind `read` in order; `on_block` sees every block read, in order.

    A yielded memoryview stays valid after the generator moves on (it keeps its block alive).
    """
    carry = b""
    while True:
        block = read(READ_SIZE)
        eof = not block
        if block and on_block is not None:
            on_block(block)
        buf = carry + block if carry else block
        if not buf:
            return
        view = memoryview(buf)
        ends = cut_points(view, params)
        if not eof:
            # The last chunk may have been cut by the end of the block, not by content: carry it over.
            ends.pop()
        start = 0
        for end in ends:
            yield view[start:end]
            start = end
        if eof:
            return
        carry = bytes(view[start:])
