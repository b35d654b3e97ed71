"""Restore filter benchmark: MB/s of the MariaDB/MySQL restore filter (`MySQLConfine`) over a generated
mariadb-dump-like stream (BENCH_FILTER_MB, default 50 MB, fixed seed: extended INSERT lines of ~1 MB with
ints, floats, NULLs and quoted strings holding escapes), fed in 64 KiB chunks, in interleaved rounds
(BENCH_REPS=3) next to a copy-only pass; median with min-max. Goal: >= 100 MB/s.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import REPS, Goals, Sample, Spread, interleave  # noqa: E402

from providers.databases.mysql_confine import MySQLConfine  # noqa: E402

CHUNK = 64 * 1024
_WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"it\\'s", b"back\\\\slash", b"line\\nbreak", b"tab\\t",
          b"caf\xc3\xa9", b"\\\"quoted\\\"", b"semi;colon", b"USE other;", b"/* not a comment */", b"--", b"#"]


def dump_stream(megabytes: int, seed: int = 20) -> bytes:
    """A mariadb-dump-like stream of about `megabytes` MB (deterministic for a seed)."""
    rng = random.Random(seed)
    out = [b"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n--\n-- Host: 127.0.0.1    Database: src\n",
           b"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n",
           b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n",
           b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `src` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n",
           b"USE `src`;\n"]
    size, table, row = sum(map(len, out)), 0, 0
    while size < megabytes * 1_000_000:
        table += 1
        head = (b"DROP TABLE IF EXISTS `t%d`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
                b"/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t%d` (\n  `id` int(11) NOT NULL,\n"
                b"  `v` text DEFAULT NULL,\n  `f` double DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT "
                b"CHARSET=utf8mb4;\n/*!40101 SET character_set_client = @saved_cs_client */;\n\nLOCK TABLES `t%d` "
                b"WRITE;\n/*!40000 ALTER TABLE `t%d` DISABLE KEYS */;\n") % (table, table, table, table)
        out.append(head)
        size += len(head)
        for _ in range(10):
            rows = []
            line = 0
            while line < 1_000_000:
                row += 1
                text = b" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 30)))
                f = b"NULL" if rng.random() < 0.1 else b"%.6g" % rng.uniform(-1e6, 1e6)
                item = b"(%d,'%s',%s)" % (row, text, f)
                rows.append(item)
                line += len(item) + 1
            stmt = b"INSERT INTO `t%d` VALUES " % table + b",".join(rows) + b";\n"
            out.append(stmt)
            size += len(stmt)
        tail = b"/*!40000 ALTER TABLE `t%d` ENABLE KEYS */;\nUNLOCK TABLES;\n" % table
        out.append(tail)
        size += len(tail)
    out.append(b"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n")
    return b"".join(out)


def run_filter(data: bytes) -> Sample:
    f = MySQLConfine("dst")
    start = time.perf_counter()
    total = 0
    for i in range(0, len(data), CHUNK):
        total += len(f.feed(data[i:i + CHUNK]))
    total += len(f.flush())
    wall = time.perf_counter() - start
    assert total >= len(data), "the filter lost bytes"
    return Sample(wall)


def run_copy(data: bytes) -> Sample:
    start = time.perf_counter()
    for i in range(0, len(data), CHUNK):
        bytes(data[i:i + CHUNK])
    return Sample(time.perf_counter() - start)


def main() -> int:
    mb = int(os.environ.get("BENCH_FILTER_MB", "50"))
    data = dump_stream(mb)
    size = len(data) / 1e6
    print(f"stream: {size:.1f} MB generated (seed 20), {CHUNK // 1024} KiB chunks, {REPS} interleaved rounds")
    runs = interleave({"filter": lambda: run_filter(data), "copy": lambda: run_copy(data)}, REPS)
    goals = Goals()
    speed = Spread.of([size / s.wall for s in runs["filter"]])
    goals.note("copy only", Spread.of([size / s.wall for s in runs["copy"]]).fmt(" MB/s", 0))
    goals.check("MySQLConfine throughput", speed, 100, at_most=False, unit=" MB/s", digits=1)
    goals.show()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
