"""A Redis restore into a numbered database writes only there (the real Redis on 127.0.0.1:6379, databases 11-14,
emptied before and after): a dump of one database restores into another and the source is unchanged; a stream
that SELECTs another database, or carries commands a backup never writes, is refused with one line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.databases.redis_stream import encode
from stashplan.errors import TransferError
from tests.integration.test_db_providers import appbinding, dump, restore

DBS = (11, 12, 13, 14)


def _cli(db: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "-n", str(db), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def _digest(db: int) -> dict[str, str]:
    """Every key of a database with its type and serialized value."""
    keys = _cli(db, "--scan").split()
    return {k: _cli(db, "TYPE", k) + ":" + subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-n", str(db), "--no-raw", "DUMP", k], check=True, capture_output=True,
        text=True).stdout for k in sorted(keys)}


@pytest.fixture()
def dbs() -> Iterator[None]:
    for db in DBS:
        _cli(db, "FLUSHDB")
    yield
    for db in DBS:
        _cli(db, "FLUSHDB")


def _url(db: int) -> str:
    return f"redis://127.0.0.1:6379/{db}"


def test_a_dump_of_one_database_restores_into_another_and_the_source_is_unchanged(dbs: None, tmp_path: Path) -> None:
    _cli(11, "SET", "greeting", "hello")
    _cli(11, "HSET", "user:1", "name", "ada")
    data = dump("redis", appbinding(_url(11)), {}, tmp_path)
    _cli(11, "SET", "greeting", "changed after the backup")
    before = _digest(11)
    restore("redis", appbinding(_url(12)), {}, tmp_path, data)
    assert _digest(11) == before
    assert _cli(12, "GET", "greeting") == "hello" and _cli(12, "HGET", "user:1", "name") == "ada"


def test_the_one_database_an_all_databases_dump_selects_is_rewritten_to_the_target(dbs: None,
                                                                                    tmp_path: Path) -> None:
    _cli(14, "SET", "k", "v")
    payload = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-n", "14", "--no-raw", "DUMP", "k"],
                             check=True, capture_output=True).stdout
    assert payload  # a stream as redis_stream writes for `--db=all`: SELECT, then RESTOREs
    data = dump("redis", appbinding(_url(14)), {}, tmp_path)
    restore("redis", appbinding(_url(12)), {}, tmp_path, encode("SELECT", 14) + data)
    assert _cli(12, "GET", "k") == "v" and _cli(14, "DBSIZE") == "1"


@pytest.mark.parametrize(("extra", "message"), [
    (encode("SELECT", 11) + encode("SET", "greeting", "overwritten"), "after writing keys"),
    (b"SELECT 11\r\nSET greeting overwritten\r\n", "an inline command"),
    (encode("FLUSHALL"), "the stream runs 'FLUSHALL'"),
    (encode("SWAPDB", 11, 13), "the stream runs 'SWAPDB'"),
])
def test_a_stream_reaching_another_database_is_refused(dbs: None, tmp_path: Path, extra: bytes,
                                                       message: str) -> None:
    _cli(11, "SET", "greeting", "hello")
    _cli(13, "SET", "mine", "x")
    data = dump("redis", appbinding(_url(13)), {}, tmp_path)
    before = _digest(11)
    with pytest.raises(TransferError, match=f"restore into redis database 13: .*{message}"):
        restore("redis", appbinding(_url(13)), {}, tmp_path, data + extra)
    assert _digest(11) == before


def test_a_second_database_in_the_dump_is_refused(dbs: None, tmp_path: Path) -> None:
    _cli(11, "SET", "a", "1")
    one = dump("redis", appbinding(_url(11)), {}, tmp_path)
    stream = encode("SELECT", 11) + one + encode("SELECT", 14) + one
    with pytest.raises(TransferError, match=r"more than one database \(11, 14\)"):
        restore("redis", appbinding(_url(12)), {}, tmp_path, stream)
    assert _cli(14, "DBSIZE") == "0"
