"""PostgreSQL restore filter benchmark: MB/s of the stream filters of a restore into a named database, before
(SuperuserLineFilter, NewerSettingsFilter, PsqlConfine) and with the statement filter (`PgTargetConfine`), over a
generated pg_dump-like stream (BENCH_FILTER_MB, default 50 MB, fixed seed: COPY rows of an int, a name, a text of
1-40 words with 5% backslash escapes, a timestamp) and a `--inserts`-like one (an INSERT per row, a fifth of the
size), in 64 KiB chunks, interleaved rounds (BENCH_REPS=3). Goal: >= 100 MB/s on the COPY stream.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import REPS, Goals, Sample, Spread, interleave  # noqa: E402

from providers.databases.base import StreamFilter  # noqa: E402
from providers.databases.confine import Chain, PsqlConfine  # noqa: E402
from providers.databases.pg_confine import PgTargetConfine  # noqa: E402
from providers.databases.pg_versions import NewerSettingsFilter  # noqa: E402
from providers.databases.postgres import SuperuserLineFilter  # noqa: E402

CHUNK = 64 * 1024
_WORDS = [b"alpha", b"beta", b"order", b"shipped", b"the", b"of", b"caf\xc3\xa9", b"semi;colon", b"COPY", b"--",
          b"/*", b"'quoted'", b"$$", b"x-y"]
_HEAD = (b"--\n-- PostgreSQL database dump\n--\n\n\\restrict k3y\n\nSET statement_timeout = 0;\n"
         b"SET transaction_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"
         b"SELECT pg_catalog.set_config('search_path', '', false);\n")


def _text(rng: random.Random, escapes: float) -> bytes:
    return b" ".join(b"\\\\" + rng.choice(_WORDS) if rng.random() < escapes else rng.choice(_WORDS)
                     for _ in range(rng.randint(1, 40)))


def dump_stream(megabytes: float, *, inserts: bool, seed: int = 20) -> bytes:
    """A plain pg_dump-like stream of about `megabytes` MB: tables with their DDL, COPY blocks (or INSERTs)."""
    rng = random.Random(seed)
    out, size, table = [_HEAD], len(_HEAD), 0
    while size < megabytes * 1_000_000:
        table += 1
        head = (b"CREATE TABLE public.t%d (\n    id integer NOT NULL,\n    name text,\n    v text,\n"
                b"    at timestamp with time zone\n);\n\nALTER TABLE public.t%d OWNER TO app;\n\n" % (table, table))
        rows = []
        for row in range(20_000):
            name, v = b"n%d" % row, _text(rng, 0.05)
            at = b"2024-%02d-%02d 12:00:00+00" % (rng.randint(1, 12), rng.randint(1, 28))
            if inserts:
                value = v.replace(b"\\\\", b"\\").replace(b"'", b"''")
                rows.append(b"INSERT INTO public.t%d VALUES (%d, '%s', '%s', '%s');\n" % (table, row, name, value, at))
            else:
                rows.append(b"%d\t%s\t%s\t%s\n" % (row, name, v, at))
        body = b"".join(rows) if inserts else (b"COPY public.t%d (id, name, v, at) FROM stdin;\n" % table
                                                + b"".join(rows) + b"\\.\n\n")
        tail = b"ALTER TABLE ONLY public.t%d\n    ADD CONSTRAINT t%d_pkey PRIMARY KEY (id);\n\n" % (table, table)
        out += [head, body, tail]
        size += len(head) + len(body) + len(tail)
    out.append(b"\\unrestrict k3y\n")
    return b"".join(out)


def before() -> StreamFilter:
    return Chain(SuperuserLineFilter(("postgres",)), NewerSettingsFilter(), PsqlConfine("dst"))


def after() -> StreamFilter:
    return Chain(SuperuserLineFilter(("postgres",)), NewerSettingsFilter(), PgTargetConfine("dst"), PsqlConfine("dst"))


def run_filter(make: Callable[[], StreamFilter], data: bytes) -> Sample:
    f = make()
    start, cpu = time.perf_counter(), time.process_time()
    total = 0
    for i in range(0, len(data), CHUNK):
        total += len(f.feed(data[i:i + CHUNK]))
    total += len(f.flush())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert total >= len(data) - 1000, "the filter lost bytes"
    return Sample(wall, cpu)


def main() -> int:
    mb = int(os.environ.get("BENCH_FILTER_MB", "50"))
    copy, inserts = dump_stream(mb, inserts=False), dump_stream(mb / 5, inserts=True)
    size, isize = len(copy) / 1e6, len(inserts) / 1e6
    print(f"streams: {size:.1f} MB of COPY rows and {isize:.1f} MB of INSERTs, seed 20, {CHUNK // 1024} KiB chunks, "
          f"{REPS} interleaved rounds")
    runs = interleave({"before": lambda: run_filter(before, copy), "after": lambda: run_filter(after, copy),
                       "before-ins": lambda: run_filter(before, inserts),
                       "after-ins": lambda: run_filter(after, inserts)}, REPS)
    goals = Goals()
    goals.note("COPY stream, before", Spread.of([size / s.wall for s in runs["before"]]).fmt(" MB/s", 1))
    goals.note("INSERT stream, before", Spread.of([isize / s.wall for s in runs["before-ins"]]).fmt(" MB/s", 1))
    goals.note("INSERT stream, with PgTargetConfine",
               Spread.of([isize / s.wall for s in runs["after-ins"]]).fmt(" MB/s", 1))
    goals.check("COPY stream, with PgTargetConfine", Spread.of([size / s.wall for s in runs["after"]]), 100,
                at_most=False, unit=" MB/s", digits=1)
    goals.show()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
