"""A MariaDB restore into a named database follows how the dump changes lexing (real server): a dump that sets
ANSI_QUOTES to hide `USE src` in a `"` string is refused and the source is unchanged; a real mariadb-dump with
routines and triggers (which set sql_mode and the client character set) restores into the target."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from providers.databases import Connection, TaskParams, get_provider
from stashplan.errors import TransferError
from tests.fixtures.restore_stream import stream_into


def _mariadb(sql: str) -> str:
    return subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "--batch", "-N", "-e", sql], check=True,
                          capture_output=True, text=True).stdout


def _restore(dst: str, stream: bytes) -> None:
    conn = Connection(scheme="", host="127.0.0.1", port=3306, database=dst, query={}, username="root", password="")
    spec = get_provider("mariadb").restore(conn, TaskParams())
    stream_into(spec, stream)


@pytest.fixture()
def pair() -> Iterator[tuple[str, str]]:
    src, dst = f"src_{uuid.uuid4().hex[:8]}", f"dst_{uuid.uuid4().hex[:8]}"
    _mariadb(f"SET sql_mode='NO_AUTO_VALUE_ON_ZERO'; CREATE DATABASE {src}; CREATE TABLE {src}.t (id INT AUTO_INCREMENT "
             "PRIMARY KEY, v TEXT);"
             f"INSERT INTO {src}.t VALUES (0, 'zero'), (1, 'it''s \"one\"'); CREATE DATABASE {dst};")
    yield src, dst
    _mariadb(f"DROP DATABASE IF EXISTS {src}; DROP DATABASE IF EXISTS {dst}")


@pytest.mark.parametrize("setting", [
    "SET sql_mode='ANSI_QUOTES';",
    "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='ANSI,NO_AUTO_VALUE_ON_ZERO' */;",
    "SET @@session.sql_mode = 'ANSI_QUOTES';",
])
def test_a_dump_that_sets_ansi_quotes_to_hide_use_of_the_source_is_refused(pair: tuple[str, str],
                                                                           setting: str) -> None:
    src, dst = pair
    before = _mariadb(f"CHECKSUM TABLE {src}.t")
    # Under ANSI_QUOTES "a\" is an identifier ending at the second quote: the client then splits at `;`, and
    # USE runs; read as a string with a backslash escape, the rest looks like string content.
    stream = (f"{setting}\nSELECT 1 AS \"a\\\"; USE {src}; INSERT INTO t VALUES (99, 'written'); SELECT \\\"\";\n"
              "SELECT 1;\n").encode()
    with pytest.raises(TransferError, match=f"restore into database {dst}: the dump sets sql_mode to .*ANSI"):
        _restore(dst, stream)
    assert _mariadb(f"CHECKSUM TABLE {src}.t") == before
    assert _mariadb(f"SELECT count(*) FROM {src}.t WHERE id = 99").strip() == "0"


def test_a_mariadb_dump_with_routines_and_triggers_restores_into_the_target(pair: tuple[str, str]) -> None:
    src, dst = pair
    _mariadb(f"USE {src}; SET sql_mode='STRICT_ALL_TABLES'; CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW "
             "SET NEW.v = CONCAT(NEW.v, '!'); CREATE PROCEDURE p() SELECT 'a;b'")
    dump = subprocess.run(["mariadb-dump", "-h127.0.0.1", "-uroot", "--routines", "--triggers", "--databases", src],
                          check=True, capture_output=True).stdout
    assert b"SQL_MODE='NO_AUTO_VALUE_ON_ZERO'" in dump and b"SET sql_mode" in dump and b"DELIMITER ;;" in dump
    before = _mariadb(f"CHECKSUM TABLE {src}.t")
    _restore(dst, dump)
    assert _mariadb(f"CHECKSUM TABLE {src}.t") == before
    # NO_AUTO_VALUE_ON_ZERO held while rows went in: id 0 stayed 0
    assert _mariadb(f"SELECT id, v FROM {dst}.t ORDER BY id") == "0\tzero\n1\tit's \"one\"\n"
    # (only these two databases: other tests on the shared server may have a trigger `tr` too)
    assert _mariadb("SELECT trigger_schema FROM information_schema.triggers WHERE trigger_name = 'tr' "
                    f"AND trigger_schema IN ('{src}', '{dst}') ORDER BY 1") == f"{dst}\n{src}\n"
    assert _mariadb("SELECT routine_schema FROM information_schema.routines WHERE routine_name = 'p' "
                    f"AND routine_schema IN ('{src}', '{dst}') ORDER BY 1") == f"{dst}\n{src}\n"
    # the restore's account is kept (locked) as the definer of what it restored: dropped with the test's database
    definer = _mariadb(f"SELECT definer FROM information_schema.triggers WHERE trigger_schema = '{dst}'").strip()
    assert definer.startswith("stashplan_r_")
    user, host = definer.split("@")
    _mariadb(f"DROP USER '{user}'@'{host}'")
