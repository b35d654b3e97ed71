"""Chunks end where a tar member begins (a base backup's files deduplicate one by one): the tar scanner finds
every member's offset, and the chunker cuts there on top of its content-defined cuts, across its read blocks."""

from __future__ import annotations

import io
import os
import random
import tarfile

from stashplan.pitr.tarscan import TarScanner
from stashplan.repository.chunking import chunk_stream, read_size
from stashplan.repository.layout import Params

PARAMS = Params(chunk_min=8 * 1024, chunk_avg=32 * 1024, chunk_max=128 * 1024)


def _tar(files: dict[str, bytes]) -> tuple[bytes, list[int]]:
    """A ustar archive of `files` and the offset of each member's header, as tarfile wrote them."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    raw = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        offsets = [m.offset for m in tar.getmembers()]
    return raw, offsets


def _files(seed: int, sizes: list[int]) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"base/5/{16384 + i}": rng.randbytes(size) for i, size in enumerate(sizes)}


def _chunk_ends(raw: bytes) -> list[int]:
    scanner = TarScanner(io.BytesIO(raw), ())  # type: ignore[arg-type]
    ends, pos = [], 0
    for chunk, _slot in chunk_stream(scanner, PARAMS):
        pos += len(chunk)
        ends.append(pos)
    assert pos == len(raw)
    return ends


def test_the_scanner_finds_every_member_start() -> None:
    raw, offsets = _tar(_files(1, [0, 10, 8192, 300_000]))
    scanner = TarScanner(io.BytesIO(raw), ())  # type: ignore[arg-type]
    buffer = bytearray(1000)  # small reads: headers cross read boundaries
    while scanner.readinto(buffer):
        pass
    assert scanner.starts == offsets
    assert scanner.forced_cuts(0, len(raw)) == offsets[1:]  # (start, end): the first one is no cut
    assert scanner.forced_cuts(offsets[1], offsets[3]) == [offsets[2]]


def test_chunks_end_at_every_member_even_across_read_blocks() -> None:
    sizes = [5_000, 40_000, 8192, 3 * read_size(PARAMS) // 2, 700, 2 * read_size(PARAMS), 1]
    raw, offsets = _tar(_files(2, sizes))
    ends = _chunk_ends(raw)
    assert set(offsets[1:]) <= set(ends)
    assert all(b - a <= PARAMS.chunk_max for a, b in zip([0, *ends], ends, strict=False))


def test_an_unchanged_file_is_the_same_chunks_when_its_neighbour_changes() -> None:
    files = _files(3, [200_000, 9_000, 200_000])
    raw, _ = _tar(files)
    changed = dict(files)
    name = next(iter(changed))
    changed[name] = os.urandom(210_000)  # the first file changes and grows
    raw2, offsets2 = _tar(changed)

    def pieces(data: bytes) -> list[bytes]:
        ends = _chunk_ends(data)
        return [data[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    known = set(pieces(raw))
    new = sum(len(p) for p in pieces(raw2) if p not in known)
    assert new <= offsets2[1]  # only the first member's chunks are new: the others are stored once
