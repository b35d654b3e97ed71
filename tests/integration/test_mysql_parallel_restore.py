"""A mariadb-dump restored over several connections into a named database (real MariaDB): the same schema and
CHECKSUM TABLE of every table as a serial restore, through the restore filter and the throwaway account on each
connection; a dump without table sections (--compact) restores serially with a note."""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from providers.databases import Connection, TaskParams, get_provider
from stashplan.errors import TransferError
from stashplan.transfer.pg_parallel_restore import ParallelWriter
from stashplan.transfer.pipe import ProcessWriter

SOURCE = r"""
CREATE TABLE customers(id INT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(80) NOT NULL UNIQUE, note TEXT);
CREATE TABLE orders(id BIGINT PRIMARY KEY AUTO_INCREMENT, customer INT NOT NULL, total DECIMAL(12,2),
                    FOREIGN KEY (customer) REFERENCES customers(id), KEY by_total (total));
CREATE TABLE audit(at TIMESTAMP NULL, what VARCHAR(200));
CREATE TABLE empty_one(id INT);
INSERT INTO customers(email, note) SELECT CONCAT('c', seq, '@example.org'),
  IF(seq % 7 = 0, 'tab\there\nnew line \\ back ''quoted''', NULL) FROM seq_1_to_3000;
INSERT INTO orders(customer, total) SELECT 1 + seq % 3000, (seq * 37 % 1000) / 1.7 FROM seq_1_to_20000;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit VALUES (NULL, NEW.id);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 500;
CREATE PROCEDURE count_orders() SELECT count(*) FROM orders;
"""


def _mariadb(sql: str, db: str = "") -> str:
    return subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "--batch", "-N", *([db] if db else []), "-e", sql],
                          check=True, capture_output=True, text=True).stdout


def _dump(db: str, *args: str) -> bytes:
    return subprocess.run(["mariadb-dump", "-h127.0.0.1", "-uroot", "--routines", "--net-buffer-length=16384",
                           *args, db], check=True, capture_output=True).stdout


def _state(db: str) -> str:
    """Schema (definers and names of the account aside) and every table's checksum."""
    schema = _dump(db, "--no-data", "--skip-dump-date").decode()
    schema = "\n".join(ln for ln in schema.splitlines() if "DEFINER" not in ln and not ln.startswith("-- "))
    tables = _mariadb(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}' "
                      "AND table_type = 'BASE TABLE' ORDER BY 1").split()
    sums = [_mariadb(f"CHECKSUM TABLE `{t}` EXTENDED", db).split("\t", 1)[1] for t in tables]
    return "\n".join([schema, *tables, *sums])


def _restore(dst: str, dump: bytes, jobs: int) -> ParallelWriter | None:
    """As the transfer runs it: the account's start, the writer (parallel when jobs > 1), finish."""
    conn = Connection(scheme="", host="127.0.0.1", port=3306, database=dst, query={}, username="root", password="")
    spec = get_provider("mariadb").restore(conn, TaskParams(jobs=jobs))
    ok = False
    try:
        assert spec.start is not None
        spec.start()
        writer: ParallelWriter | ProcessWriter
        if spec.parallel is not None:
            writer = ParallelWriter(spec.parallel)
        else:
            assert spec.make_filter is not None
            writer = ProcessWriter(spec.spec, stream_filter=spec.make_filter())
        with writer:
            for i in range(0, len(dump), 65536):
                writer.write(dump[i:i + 65536])
            writer.finish()
        ok = True
    finally:
        assert spec.finish is not None
        spec.finish(ok)
    return writer if isinstance(writer, ParallelWriter) else None


@pytest.fixture()
def dbs() -> Iterator[list[str]]:
    names = [f"mp_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    _mariadb("; ".join(f"CREATE DATABASE {n}" for n in names))
    yield names
    _mariadb("; ".join(f"DROP DATABASE IF EXISTS {n}" for n in names))


def test_parallel_restore_matches_a_serial_restore(dbs: list[str]) -> None:
    src, serial, parallel = dbs
    _mariadb(SOURCE, src)
    dump = _dump(src)
    _restore(serial, dump, jobs=1)

    writer = _restore(parallel, dump, jobs=3)

    assert writer is not None and not writer._split.note
    assert len({c for conns in writer.loaded_by.values() for c in conns}) > 1  # tables went to several
    assert _state(parallel) == _state(serial)
    assert _mariadb("SELECT count(*) FROM orders", parallel).strip() == "20000"
    assert _mariadb("SELECT count(*) FROM audit", parallel).strip() == "0"  # the trigger came after the data
    assert _mariadb("SELECT count(*) FROM big_orders", parallel) == _mariadb("SELECT count(*) FROM big_orders", src)
    definers = _mariadb(f"SELECT definer FROM information_schema.triggers WHERE trigger_schema = '{parallel}' UNION ALL "
                        f"SELECT definer FROM information_schema.views WHERE table_schema = '{parallel}'").split()
    assert len(definers) == 2 and all(d.startswith("stashplan_r_") for d in definers)  # as the restore's account


def test_a_compact_dump_restores_serially_with_a_note(dbs: list[str], caplog: pytest.LogCaptureFixture) -> None:
    src, serial, parallel = dbs
    _mariadb(SOURCE, src)
    dump = _dump(src, "--compact")
    _restore(serial, dump, jobs=1)

    with caplog.at_level(logging.WARNING):
        _restore(parallel, dump, jobs=2)

    assert "no table sections" in caplog.text
    assert _state(parallel) == _state(serial)


def test_a_string_across_a_section_marker_fails_instead_of_being_cut(dbs: list[str]) -> None:
    src, _, dst = dbs
    _mariadb(SOURCE, src)
    dump = _dump(src).replace(b"DROP TABLE IF EXISTS `orders`;", b"DROP TABLE IF EXISTS `orders`;\nSELECT 'open\n"
                              b"-- Table structure for table `x`\n';", 1)  # the cut falls inside a string

    with pytest.raises(TransferError, match="does not end a table's section where a statement ends"):
        _restore(dst, dump, jobs=2)
