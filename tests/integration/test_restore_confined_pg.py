"""A PostgreSQL restore into a named database writes only that database (real server, issue 20 item 4): a dump that
reaches another database, the server or its OS fails in one line and the source is unchanged; a superuser
AppBinding's restore runs as a role of its own that cannot, even without the filter; a rich pg_dump restores as a
serial psql restore does, serial and over 2 connections, and the role is gone afterwards whatever the outcome."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from providers.databases import Connection, TaskParams, get_provider
from providers.databases.base import RestoreSpec
from stashplan.errors import TransferError
from stashplan.transfer.pg_parallel_restore import ParallelWriter
from stashplan.transfer.pipe import ProcessWriter
from tests.fixtures.databases import PG_HOST, PG_PORT, PgDatabase, pg_database, psql

__all__ = ["pg_database"]

RICH = """
CREATE EXTENSION pgcrypto;
CREATE SCHEMA shop;
CREATE SCHEMA "Audit Log";
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN shop.pos AS integer CHECK (VALUE > 0);
CREATE SEQUENCE shop.counter START 40;
CREATE TABLE shop.customer (id serial PRIMARY KEY, name text NOT NULL UNIQUE, mood shop.mood DEFAULT 'ok',
  secret bytea DEFAULT gen_random_bytes(4), note text CHECK (note <> 'x;y'));
CREATE TABLE shop."Order" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer int REFERENCES shop.customer(id),
  qty shop.pos, total numeric(10,2), tags text[], payload jsonb);
CREATE INDEX order_lower ON shop."Order" (lower(payload->>'k'));
CREATE TABLE "Audit Log".entries (id serial, what text);
CREATE FUNCTION shop.log_order() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  INSERT INTO "Audit Log".entries(what) VALUES ('order ' || NEW.id || E' \\\\ ; $$ done');
  RETURN NEW;
END $body$;
CREATE TRIGGER order_log AFTER INSERT ON shop."Order" FOR EACH ROW EXECUTE FUNCTION shop.log_order();
CREATE FUNCTION shop.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT a + b; END;
CREATE PROCEDURE shop.noop() LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN 1 = 1 THEN 2 END; END;
CREATE VIEW shop.big_orders AS SELECT o.id, c.name, o.tags[1:2] AS first_tags FROM shop."Order" o
  JOIN shop.customer c ON c.id = o.customer WHERE o.total > 100;
CREATE MATERIALIZED VIEW shop.counts AS SELECT customer, count(*) FROM shop."Order" GROUP BY 1;
COMMENT ON TABLE shop.customer IS 'who buys; it''s "quoted" and \\ backslashed';
INSERT INTO shop.customer (name, mood, note) VALUES ('ann', 'happy', E'tab\\there\\nnewline \\\\. and \\\\N'),
  ('bob', 'sad', '\\.'), ('c''d', 'ok', 'semi;colon -- not a comment /* nor this */ COPY x TO PROGRAM ''id''');
INSERT INTO shop."Order" (customer, qty, total, tags, payload)
  SELECT 1 + (i % 3), i, i * 1.5, ARRAY['t' || i, 'u'], jsonb_build_object('k', 'V' || i) FROM generate_series(1, 300) i;
INSERT INTO shop.customer (name) SELECT 'name ' || i FROM generate_series(1, 500) i;
REFRESH MATERIALIZED VIEW shop.counts;
CREATE TABLE shop.notes (body text, n int);
INSERT INTO shop.notes VALUES ('CREATE ROLE postgres;', 1), ('ALTER ROLE postgres WITH SUPERUSER', 2);
SELECT lo_from_bytea(0, convert_to(repeat('large object; ALTER DATABASE x. ', 2000), 'UTF8'));
ALTER TABLE shop.customer OWNER TO {owner};
ALTER SCHEMA "Audit Log" OWNER TO {owner};
GRANT SELECT ON shop."Order" TO {owner};
GRANT USAGE ON SCHEMA shop TO {owner};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA shop GRANT SELECT ON TABLES TO PUBLIC;
CREATE POLICY p ON shop.customer USING (true);
"""


@pytest.fixture
def owner() -> Iterator[str]:
    """A role that owns some of the rich database's objects (dropped after the databases)."""
    name = f"stp_owner_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE ROLE {name} LOGIN")
    yield name
    psql(f"DROP ROLE IF EXISTS {name}")


def _pg_dump(db: str, *args: str) -> bytes:
    return subprocess.run(["pg_dump", f"-h{PG_HOST}", f"-p{PG_PORT}", "-Upostgres", *args, "-d", db], check=True,
                          capture_output=True).stdout


def _schema_and_rows(db: str) -> bytes:
    """The database as pg_dump sees it (owners, privileges, rows, the large object), without its random key lines."""
    return b"".join(line for line in _pg_dump(db).splitlines(keepends=True) if not line.startswith(b"\\"))


def _spec(db: PgDatabase, user: str = "postgres", jobs: int = 1) -> RestoreSpec:
    conn = Connection(scheme="", host=PG_HOST, port=PG_PORT, database=db.name, query={}, username=user, password="")
    return get_provider("postgres").restore(conn, TaskParams(jobs=jobs))


def _restore(spec: RestoreSpec, stream: bytes, *, chunk: int = 4096, unfiltered: bool = False,
             seen: Callable[[], None] | None = None) -> None:
    """As stashplan.transfer.run does: start, the client (filtered unless `unfiltered`), finish(ok)."""
    ok = False
    try:
        if spec.start is not None:
            spec.start()
        if seen is not None:
            seen()
        writer = ParallelWriter(spec.parallel) if spec.parallel else ProcessWriter(
            spec.spec, stream_filter=None if unfiltered or spec.make_filter is None else spec.make_filter())
        with writer:
            for i in range(0, len(stream), chunk):
                writer.write(stream[i:i + chunk])
            writer.finish()
        ok = True
    finally:
        if spec.finish is not None:
            spec.finish(ok)


def _role_of(spec: RestoreSpec) -> str:
    return str(spec.spec.env.get("PGUSER", ""))


def _roles(name: str) -> str:
    return psql(f"SELECT rolname || ':' || rolsuper FROM pg_roles WHERE rolname = '{name}'")


@pytest.fixture
def source(pg_database: Callable[[], PgDatabase]) -> PgDatabase:
    src = pg_database()
    src.sql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    return src


def _fingerprint(db: PgDatabase) -> str:
    """The source's rows and its database-level settings."""
    rows = db.sql("SELECT md5(string_agg(id::text || v, ',' ORDER BY id)) FROM t")
    settings = psql(f"SELECT coalesce(string_agg(array_to_string(s.setconfig, ','), ';'), '') FROM pg_db_role_setting s "
                    f"JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = '{db.name}'")
    return rows + "|" + settings


ATTACKS = {
    "COPY TO PROGRAM": ("COPY (SELECT 1) TO PROGRAM 'psql -h {host} -p {port} -U postgres -d {src} -c \"DELETE FROM t\"';",
                        "COPY ... TO PROGRAM"),
    "ALTER DATABASE": ("ALTER DATABASE {src} SET work_mem = '7MB';", "ALTER DATABASE {src}"),
    "dblink": ("CREATE EXTENSION IF NOT EXISTS dblink;\n"
               "SELECT dblink_exec('host={host} port={port} user=postgres dbname={src}', 'DELETE FROM t');",
               "CREATE EXTENSION dblink"),
    "SET ROLE": ("SET ROLE postgres;\nSELECT 1;", "SET ROLE postgres"),
    "COPY FROM a server file": ("CREATE TABLE x (line text);\nCOPY x FROM '/etc/hostname';", "COPY ... FROM"),
    "DO": ("DO $$BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''true'''; END$$;", "DO"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_dump_reaching_another_database_fails_in_one_line_and_the_source_is_unchanged(
    attack: str, source: PgDatabase, pg_database: Callable[[], PgDatabase]
) -> None:
    dst = pg_database()
    sql, named = (text.format(host=PG_HOST, port=PG_PORT, src=source.name) for text in ATTACKS[attack])
    before = _fingerprint(source)
    stream = f"CREATE TABLE kept (id int);\nCOPY kept (id) FROM stdin;\n1\n\\.\n{sql}\n".encode()
    spec = _spec(dst)
    with pytest.raises(TransferError) as err:
        _restore(spec, stream)
    message = str(err.value)
    assert "\n" not in message and named in message and "reaches beyond the target database" in message
    assert _fingerprint(source) == before
    assert dst.sql("SELECT count(*) FROM pg_class WHERE relname = 'kept'") == "0"  # nothing written
    assert _roles(_role_of(spec)) == ""


def test_the_restore_role_alone_cannot_reach_another_database(
    source: PgDatabase, pg_database: Callable[[], PgDatabase]
) -> None:
    """The guarantee without the filter: the client runs as a role that is no superuser and member of no role."""
    dst = pg_database()
    before = _fingerprint(source)
    spec = _spec(dst)
    during: list[str] = []
    attack = (f"COPY (SELECT 1) TO PROGRAM 'psql -h {PG_HOST} -p {PG_PORT} -U postgres -d {source.name} "
              f"-c \"DELETE FROM t\"';\nALTER DATABASE {source.name} SET work_mem = '7MB';\n")
    with pytest.raises(TransferError, match="pg_execute_server_program"):
        _restore(spec, attack.encode(), unfiltered=True, seen=lambda: during.append(_roles(_role_of(spec))))
    role = _role_of(spec)
    assert role.startswith("stashplan_r_") and during == [f"{role}:false"]
    assert psql(f"SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                f"WHERE r.rolname = '{role}'") == "0"
    with pytest.raises(TransferError, match="must be owner of database"):
        _restore(_spec(dst), f"ALTER DATABASE {source.name} SET work_mem = '7MB';\n".encode(), unfiltered=True)
    assert _fingerprint(source) == before
    assert _roles(role) == ""  # gone after a failure


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_rich_pg_dump_restores_as_a_serial_psql_restore_does_and_the_role_is_gone(
    owner: str, pg_database: Callable[[], PgDatabase], jobs: int
) -> None:
    rich, plain, confined = pg_database(), pg_database(), pg_database()
    psql(RICH.replace("{owner}", owner), db=rich.name)
    dump = _pg_dump(rich.name)
    subprocess.run(["psql", f"-h{PG_HOST}", f"-p{PG_PORT}", "-Upostgres", "-Xq", "--set=ON_ERROR_STOP=1",
                    "--single-transaction", "-d", plain.name], input=dump, check=True, capture_output=True)
    spec = _spec(confined, jobs=jobs)
    during: list[str] = []
    _restore(spec, dump, chunk=1000 + jobs, seen=lambda: during.append(_roles(_role_of(spec))))
    assert during == [f"{_role_of(spec)}:false"]  # the client ran as the restore's role, no superuser
    assert _schema_and_rows(confined.name) == _schema_and_rows(plain.name)
    assert _roles(_role_of(spec)) == ""


def test_a_non_superuser_appbinding_user_restores_as_itself(
    owner: str, pg_database: Callable[[], PgDatabase]
) -> None:
    dst = pg_database()
    psql(f"ALTER DATABASE {dst.name} OWNER TO {owner}")
    dst.sql(f"ALTER SCHEMA public OWNER TO {owner}")
    spec = _spec(dst, user=owner)
    _restore(spec, b"CREATE TABLE public.t (id int);\nCOPY public.t (id) FROM stdin;\n1\n2\n\\.\n")
    assert dst.sql("SELECT count(*) || pg_catalog.pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't' "
                   "GROUP BY relowner") == f"1{owner}"
    with pytest.raises(TransferError, match=r"COPY \.\.\. TO PROGRAM"):
        _restore(_spec(dst, user=owner), b"COPY (SELECT 1) TO PROGRAM 'true';\n")


def test_an_owner_the_server_lacks_fails_the_restore_in_one_line_and_the_role_is_gone(
    pg_database: Callable[[], PgDatabase]
) -> None:
    dst = pg_database()
    spec = _spec(dst)
    with pytest.raises(TransferError, match=r'owners and privileges failed .*role "stp_nobody_h20" does not exist'):
        _restore(spec, b"CREATE TABLE public.t (id int);\nALTER TABLE public.t OWNER TO stp_nobody_h20;\n")
    assert _roles(_role_of(spec)) == ""
    assert dst.sql("SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'") == "postgres"


def test_an_inserts_dump_with_a_backslash_before_a_quote_restores_as_psql_restores_it(
    pg_database: Callable[[], PgDatabase]
) -> None:
    src, plain, confined = pg_database(), pg_database(), pg_database()
    src.sql("CREATE TABLE public.t (id int, v text); INSERT INTO public.t VALUES "
            "(1, E'it\\\\''s'), (2, E'\\\\'';COPY (SELECT 1) TO PROGRAM ''true'';--'), (3, E'\\\\\\\\')")
    dump = _pg_dump(src.name, "--inserts")
    assert b"'it\\''s'" in dump  # the value's backslash before a doubled quote, read either way by settings
    subprocess.run(["psql", f"-h{PG_HOST}", f"-p{PG_PORT}", "-Upostgres", "-Xq", "--set=ON_ERROR_STOP=1",
                    "--single-transaction", "-d", plain.name], input=dump, check=True, capture_output=True)
    _restore(_spec(confined), dump, chunk=7)
    assert _schema_and_rows(confined.name) == _schema_and_rows(plain.name)
    assert confined.sql("SELECT string_agg(v, '|' ORDER BY id) FROM public.t") == \
        "it\\'s|\\';COPY (SELECT 1) TO PROGRAM 'true';--|\\\\"
