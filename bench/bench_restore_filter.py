"""Restore filter benchmark: MB/s of the MariaDB/MySQL restore filter (`MySQLConfine`) over a generated
mariadb-dump-like stream (BENCH_FILTER_MB, default 50 MB, fixed seed: extended INSERT lines of ~1 MB, rows of
an int, a name, a timestamp, a text of 1-40 words with 5% of them backslash-escaped, a float or NULL), fed in
64 KiB chunks, in interleaved rounds (BENCH_REPS=3) with an escape-heavy stream (33%) and a copy-only pass;
median with min-max (wall clock; per CPU second as information). Goal: >= 100 MB/s.
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
_WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"order", b"shipped", b"customer", b"the", b"of", b"and", b"to",
          b"caf\xc3\xa9", b"semi;colon", b"USE", b"other", b"--", b"#", b"/*", b"x-y"]
_ESCAPED = [b"it\\'s", b"back\\\\slash", b"line\\nbreak", b"tab\\t", b"\\\"quoted\\\""]


def _text(rng: random.Random, words: int, escapes: float) -> bytes:
    return b" ".join(rng.choice(_ESCAPED) if rng.random() < escapes else rng.choice(_WORDS) for _ in range(words))


def dump_stream(megabytes: int, seed: int = 20, escapes: float = 0.05) -> bytes:
    """A mariadb-dump-like stream of about `megabytes` MB (deterministic for a seed): rows of an id, a name, a
    timestamp, a text of 1-40 words (a share `escapes` of them with a backslash escape), a float or NULL."""
    rng = random.Random(seed)
    out = [b"/*M!999999\\- enable the sandbox mode */\n-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n",
           b"/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n",
           b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n",
           b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `src` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n",
           b"USE `src`;\n"]
    size, table, row = sum(map(len, out)), 0, 0
    while size < megabytes * 1_000_000:
        table += 1
        head = (b"DROP TABLE IF EXISTS `t%d`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
                b"/*!40101 SET character_set_client = utf8mb4 */;\nCREATE TABLE `t%d` (\n  `id` int(11) NOT NULL,\n"
                b"  `name` varchar(64) NOT NULL,\n  `at` datetime NOT NULL,\n  `v` text DEFAULT NULL,\n"
                b"  `f` double DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
                b"/*!40101 SET character_set_client = @saved_cs_client */;\n\nLOCK TABLES `t%d` WRITE;\n"
                b"/*!40000 ALTER TABLE `t%d` DISABLE KEYS */;\n") % (table, table, table, table)
        out.append(head)
        size += len(head)
        for _ in range(10):
            rows = []
            line = 0
            while line < 1_000_000:
                row += 1
                f = b"NULL" if rng.random() < 0.1 else b"%.6g" % rng.uniform(-1e6, 1e6)
                item = b"(%d,'%s','2024-%02d-%02d %02d:%02d:%02d','%s',%s)" % (
                    row, _text(rng, rng.randint(1, 3), escapes), rng.randint(1, 12), rng.randint(1, 28),
                    rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), _text(rng, rng.randint(1, 40), escapes), f)
                rows.append(item)
                line += len(item) + 1
            stmt = b"INSERT INTO `t%d` VALUES " % table + b",".join(rows) + b";\n"
            out.append(stmt)
            size += len(stmt)
        tail = b"/*!40000 ALTER TABLE `t%d` ENABLE KEYS */;\nUNLOCK TABLES;\n" % table
        out.append(tail)
        size += len(tail)
    out.append(b"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n"
               b"/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n")
    return b"".join(out)


def run_filter(data: bytes) -> Sample:
    f = MySQLConfine("dst")
    start, cpu = time.perf_counter(), time.process_time()
    total = 0
    for i in range(0, len(data), CHUNK):
        total += len(f.feed(data[i:i + CHUNK]))
    total += len(f.flush())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert total >= len(data), "the filter lost bytes"
    return Sample(wall, cpu)


def run_copy(data: bytes) -> Sample:
    start = time.perf_counter()
    for i in range(0, len(data), CHUNK):
        bytes(data[i:i + CHUNK])
    return Sample(time.perf_counter() - start)


def main() -> int:
    mb = int(os.environ.get("BENCH_FILTER_MB", "50"))
    typical, heavy = dump_stream(mb), dump_stream(max(mb // 5, 1), escapes=0.33)
    size, heavy_size = len(typical) / 1e6, len(heavy) / 1e6
    print(f"streams: {size:.1f} MB (5% of words escaped) and {heavy_size:.1f} MB (33%), seed 20, "
          f"{CHUNK // 1024} KiB chunks, {REPS} interleaved rounds")
    runs = interleave({"filter": lambda: run_filter(typical), "heavy": lambda: run_filter(heavy),
                       "copy": lambda: run_copy(typical)}, REPS)
    goals = Goals()
    goals.note("copy only", Spread.of([size / s.wall for s in runs["copy"]]).fmt(" MB/s", 0))
    goals.note("per CPU second", Spread.of([size / s.cpu for s in runs["filter"]]).fmt(" MB/s", 1))
    goals.note("escape-heavy stream", Spread.of([heavy_size / s.wall for s in runs["heavy"]]).fmt(" MB/s", 1))
    goals.check("MySQLConfine throughput", Spread.of([size / s.wall for s in runs["filter"]]), 100, at_most=False,
                unit=" MB/s", digits=1)
    goals.show()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
