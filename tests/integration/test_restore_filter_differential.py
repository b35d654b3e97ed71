"""The MariaDB restore filter against the real client and server: seeded random streams of quotes, escapes,
comments, executable comments, delimiters, NULs and `USE src` run through the filter and then through
`mariadb --binary-mode --force`; every `SELECT DATABASE()` the server runs must answer the target (or the
filter refused the stream). FILTER_FUZZ_CASES (default 150) and FILTER_FUZZ_SEED replay a run."""

from __future__ import annotations

import os
import random
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from providers.databases import Connection, TaskParams, get_provider
from providers.databases.mysql_confine import MySQLConfine
from stashplan.errors import TransferError

_PIECES = [b"'", b'"', b"`", b"\\", b"\\'", b"''", b";", b"\n", b" ", b"#", b"-- ", b"--", b"--x", b"/*", b"*/",
           b"/*!40101 ", b"/*!99999 ", b"/*M!999999", b"USE src", b"USE src;", b"\nUSE src;\n",
           b"SELECT DATABASE();", b"\nSELECT DATABASE();\n", b"x", b"\x00", b"\\\x00", b"\nDELIMITER $$\n", b"$$",
           b"\nDELIMITER ;\n", b"\\N", b"\\-", b"\r\n", b"SET @a='", b"0x41", b"\nDELIMITER //\n", b"//",
           b"\ndelimiterx $$\n", b"\t", b"\x0b", b"--\x01", b"\\\n", b"-", b"*", b"SET NAMES latin1;"]


def _mariadb(sql: str) -> str:
    return subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "--batch", "-N", "-e", sql], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture()
def pair() -> Iterator[tuple[str, str]]:
    src, dst = f"src_{uuid.uuid4().hex[:8]}", f"dst_{uuid.uuid4().hex[:8]}"
    _mariadb(f"CREATE DATABASE {src}; CREATE DATABASE {dst}")
    yield src, dst
    _mariadb(f"DROP DATABASE IF EXISTS {src}; DROP DATABASE IF EXISTS {dst}")


@pytest.fixture()
def client(pair: tuple[str, str]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The restore client's argv and env, its account (limited to the target) created for the test's length."""
    conn = Connection(scheme="", host="127.0.0.1", port=3306, database=pair[1], query={}, username="root",
                      password="")
    spec = get_provider("mariadb").restore(conn, TaskParams())
    assert spec.start is not None and spec.finish is not None
    spec.start()
    yield [*spec.spec.argv, "--force", "--skip-column-names"], spec.spec.full_env()
    spec.finish(False)


def test_no_stream_makes_the_server_run_in_another_database_than_the_target(
        pair: tuple[str, str], client: tuple[list[str], dict[str, str]]) -> None:
    src, dst = pair
    seed = int(os.environ.get("FILTER_FUZZ_SEED", "11"))
    cases = int(os.environ.get("FILTER_FUZZ_CASES", "150"))
    rng = random.Random(seed)
    argv, env = client
    ran = refused = reached = 0
    for case in range(cases):
        stream = b"".join(rng.choice(_PIECES) for _ in range(rng.randint(5, 40))).replace(b"src", src.encode())
        stream += b"\n;\nSELECT DATABASE();\n"
        f = MySQLConfine(dst)
        try:
            chunk = rng.choice((1, 3, 64, 4096))
            filtered = b"".join(f.feed(stream[i:i + chunk]) for i in range(0, len(stream), chunk)) + f.flush()
        except TransferError:
            refused += 1
            continue
        done = subprocess.run(argv, input=filtered, capture_output=True, timeout=60, env=env)
        answers = set(done.stdout.decode(errors="replace").split())
        assert answers <= {dst, "NULL"}, f"case {case} (seed {seed}) ran in {answers}: {stream!r}"
        ran += 1
        reached += dst in answers  # the client connected (as the restore's account) and ran statements
    assert ran > cases // 3  # most streams reach the server
    assert reached > cases // 10
