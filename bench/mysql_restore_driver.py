"""Bench helper: a mariadb-dump on stdin restored into a named database as `transfer restore` does it (the
restore's account, its filter; `--jobs N` connections when N > 1). Usage: mysql_restore_driver.py DB JOBS."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from providers.databases import Connection, TaskParams, get_provider
from stashplan.transfer.pg_parallel_restore import ParallelWriter
from stashplan.transfer.pipe import ProcessWriter


def main(db: str, jobs: int) -> None:
    conn = Connection(scheme="", host="127.0.0.1", port=3306, database=db, query={}, username="root", password="")
    spec = get_provider("mariadb").restore(conn, TaskParams(jobs=jobs))
    ok = False
    try:
        if spec.start is not None:
            spec.start()
        writer = (ParallelWriter(spec.parallel) if spec.parallel is not None else
                  ProcessWriter(spec.spec, stream_filter=spec.make_filter() if spec.make_filter else None))
        with writer:
            while chunk := sys.stdin.buffer.read(1 << 20):
                writer.write(chunk)
            writer.finish()
        ok = True
    finally:
        if spec.finish is not None:
            spec.finish(ok)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
