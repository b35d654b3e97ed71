"""A plain pg_dump restored over several psql connections gives the same schema and rows as psql alone
(real PostgreSQL, throwaway databases); a failing statement fails the restore naming the connection."""

from __future__ import annotations

import io
import re
import subprocess
import time
from collections.abc import Callable

import pytest

from providers.databases.base import Connection, TaskParams
from providers.databases.postgres import PostgresProvider
from stashplan.errors import TransferError
from stashplan.transfer.pg_parallel_restore import ParallelWriter, restore_plain_dump
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import PG_HOST, PG_PORT, PgDatabase
from tests.fixtures.transfer import StashWorld

SOURCE = r"""
CREATE TABLE customers(id serial PRIMARY KEY, email text NOT NULL, note text, CHECK (email <> ''));
CREATE UNIQUE INDEX customers_email ON customers(lower(email));
CREATE TABLE orders(id bigserial PRIMARY KEY, customer int NOT NULL REFERENCES customers(id),
                    total numeric(12,2), placed timestamptz DEFAULT '2024-01-01', tags jsonb);
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_big ON orders(total) WHERE total > 500;
COMMENT ON INDEX orders_customer IS 'lookups by customer';
CREATE TABLE lines(order_id bigint REFERENCES orders(id) ON DELETE CASCADE, n int, item text,
                   PRIMARY KEY (order_id, n));
CREATE TABLE audit(at timestamptz, what text);
CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit VALUES (now(), 'order ' || NEW.id); RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order();
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 500;
CREATE MATERIALIZED VIEW per_customer AS SELECT customer, count(*) AS n FROM orders GROUP BY customer;
CREATE INDEX per_customer_n ON per_customer(n);
INSERT INTO customers(email, note)
  SELECT 'c' || g || '@example.org', CASE WHEN g % 7 = 0 THEN E'tab\there\nnew line \\ back' END
  FROM generate_series(1, 3000) g;
INSERT INTO orders(customer, total, tags)
  SELECT 1 + g % 3000, (g * 37 % 1000)::numeric / 1.7, jsonb_build_object('g', g)
  FROM generate_series(1, 6000) g;
INSERT INTO lines SELECT o.id, n, repeat('x', n) FROM orders o, generate_series(1, 3) n;
REFRESH MATERIALIZED VIEW per_customer;
"""


def _dump(db: PgDatabase) -> bytes:
    argv = ["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "--no-owner", db.name]
    return subprocess.run(argv, capture_output=True, check=True).stdout


def _schema(db: PgDatabase) -> str:
    text = subprocess.run(["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "--schema-only",
                           db.name], capture_output=True, text=True, check=True).stdout
    return re.sub(r"(?m)^\\(un)?restrict \S+$", "", text)


def _rows(db: PgDatabase) -> dict[str, str]:
    def names(kinds: str) -> list[str]:
        return db.sql("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c JOIN pg_namespace s "
                      f"ON s.oid = c.relnamespace WHERE s.nspname = 'public' AND c.relkind IN ({kinds})").split(",")

    rows = {t: db.sql(f"SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) "
                      f"FROM {t} x") for t in names("'r', 'm'")}
    return rows | {s: db.sql(f"SELECT last_value || ' ' || is_called FROM {s}") for s in names("'S'")}


def _connection(db: PgDatabase) -> Connection:
    return Connection(scheme="postgres", host=PG_HOST, port=PG_PORT, database=db.name, query={}, username="postgres",
                      password="")


def _serial(db: PgDatabase, dump: bytes) -> None:
    subprocess.run(["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-X", "-q", "-o", "/dev/null",
                    "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", db.name], input=dump, check=True)


@pytest.mark.parametrize("jobs", [1, 3])
def test_parallel_restore_matches_a_serial_psql_restore(pg_database: Callable[[], PgDatabase], jobs: int) -> None:
    src, serial, parallel = pg_database(), pg_database(), pg_database()
    src.sql(SOURCE)
    dump = _dump(src)
    _serial(serial, dump)

    # pieces of 16 KiB: every table's COPY is cut into several, spread over the connections
    clients = PostgresProvider().parallel_clients(_connection(parallel), TaskParams(jobs=jobs))
    with ParallelWriter(clients, piece_bytes=16 << 10) as writer:
        writer.write(dump)
        writer.finish()

    assert writer.loaded_by["public.lines"] == set(range(jobs))  # one table's rows over every connection

    assert _schema(parallel) == _schema(serial)
    rows = _rows(parallel)
    assert rows == _rows(serial)
    assert rows["orders"].startswith("6000 ") and rows["lines"].startswith("18000 ")
    assert parallel.sql("SELECT count(*) FROM audit") == "6000"  # the trigger came after the data: not fired again
    with pytest.raises(subprocess.CalledProcessError):  # the FK is there and enforced
        parallel.sql("INSERT INTO lines VALUES (999999, 1, 'orphan')")


def test_a_failing_statement_fails_the_parallel_restore(pg_database: Callable[[], PgDatabase]) -> None:
    src, dst = pg_database(), pg_database()
    src.sql(SOURCE)
    dst.sql("CREATE TABLE orders(id int)")  # the dump's CREATE TABLE orders fails

    with pytest.raises(TransferError, match=r"psql \(connection 1\) exited with code 3: .*orders.*already exists"):
        restore_plain_dump(io.BytesIO(_dump(src)), host=PG_HOST, port=PG_PORT, username="postgres",
                           dbname=dst.name, jobs=2)


def test_restore_session_with_jobs_restores_over_several_connections(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    src, dst = pg_database(), pg_database()
    src.sql(SOURCE)
    w.appbinding("src-pg", src.url, app_type="kubedb.com/postgres", username="postgres")
    w.appbinding("dst-pg", dst.url, username="postgres")
    w.repository()
    w.backup_config("pg-backup", "src-pg", keep_last=5)
    w.backup_session("pg-backup", "pg-backup-1")
    assert backup(w.cluster, w.namespace, "pg-backup-1", TransferOptions(database="postgres")).ok
    w.restore_session("pg-restore", "dst-pg")

    restored = restore(w.cluster, w.namespace, "pg-restore", TransferOptions(database="postgres", jobs=2))

    assert restored.ok, restored.host.error
    assert _rows(dst) == _rows(src)
    assert _schema(dst) == _schema(src)


def test_the_deadline_kills_every_connection(pg_database: Callable[[], PgDatabase]) -> None:
    dst = pg_database()

    with pytest.raises(TransferError, match="deadline exceeded"):
        restore_plain_dump(io.BytesIO(b"SELECT pg_catalog.pg_sleep(60);\n"), host=PG_HOST, port=PG_PORT, username="postgres",
                           dbname=dst.name, jobs=2, deadline=time.monotonic() + 2)



def test_a_dump_that_switches_database_is_refused_as_in_a_serial_restore(
    pg_database: Callable[[], PgDatabase]
) -> None:
    src, dst = pg_database(), pg_database()
    src.sql(SOURCE)
    dump = _dump(src).replace(b"\nSET statement_timeout", b"\n\\connect postgres\nSET statement_timeout", 1)

    with pytest.raises(TransferError, match=r"the dump switches database \(\\connect postgres\)"):
        restore_plain_dump(io.BytesIO(dump), host=PG_HOST, port=PG_PORT, username="postgres", dbname=dst.name, jobs=2)
    assert dst.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
