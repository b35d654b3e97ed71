"""The PostgreSQL restore filter reads a psql script as psql and the server do (pure): pg_dump's constructs pass
byte for byte at any chunk size, what reaches beyond the target is refused in one line naming it, and what psql
could read differently (meta-commands, psql variables, strings whose end depends on settings) is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.databases.pg_confine import PgTargetConfine
from stashplan.errors import TransferError

CHUNKS = (1, 2, 3, 7, 64, 4096, 1 << 20)

# pg_dump-like text whose lexing is easy to get wrong: COPY data that looks like SQL or like the end marker,
# dollar quotes with ; and other tags inside, E'' and doubled quotes, nested comments, BEGIN ATOMIC bodies.
PASSING = b"""--
-- PostgreSQL database dump
--

\\restrict AbC123

SET statement_timeout = 0;
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET client_encoding = 'UTF8';
SET SESSION AUTHORIZATION DEFAULT;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions; COPY x TO PROGRAM ''no''';
CREATE SCHEMA "Audit; Log";
CREATE FUNCTION shop.f() RETURNS trigger LANGUAGE plpgsql AS $_$
BEGIN
  PERFORM 1; -- ; $$ not the end
  RAISE NOTICE 'it''s $x$ % ;', E'\\\\ \\' ;';
  RETURN NEW;
END $_$;
CREATE FUNCTION shop.add(a integer, b integer) RETURNS integer
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
 SELECT (a + b);
 SELECT CASE WHEN (a > 1) THEN 2 ELSE 3 END AS "case";
END;
/* a comment /* nested ; */ COPY x TO PROGRAM 'y'; */
CREATE VIEW shop.v AS
 SELECT (t.tags)[1:2] AS first, (t.total)::numeric(10,2) AS total, lower(t.name) AS name
   FROM shop.t WHERE (t.note <> 'x;y'::text);
ALTER TABLE shop.t OWNER TO alice;
COPY shop.t (id, note) FROM stdin;
1\tCOPY (SELECT 1) TO PROGRAM 'id';
2\t\\\\.
3\t\\.x
4\t\\N
\\.
SELECT pg_catalog.setval('shop.t_id_seq', 4, true);
SELECT pg_catalog.lo_create('16385');
SELECT pg_catalog.lo_open('16385', 131072);
SELECT pg_catalog.lowrite(0, '\\x414243');
SELECT pg_catalog.lo_close(0);
ALTER LARGE OBJECT 16385 OWNER TO alice;
GRANT SELECT ON TABLE shop.t TO bob;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE alice IN SCHEMA shop GRANT SELECT ON TABLES TO PUBLIC;
ALTER DATABASE dst SET work_mem TO '8MB';
CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p WITH (connect = false, slot_name = 's');
COPY shop.t (id, note) FROM stdin;
5\tlast
\\.

\\unrestrict AbC123
"""


def _run(stream: bytes, chunk: int, defer: list[bytes] | None = None) -> bytes:
    f = PgTargetConfine("dst", None if defer is None else defer.append)
    return b"".join(f.feed(stream[i:i + chunk]) for i in range(0, len(stream), chunk)) + f.flush()


@pytest.mark.parametrize("chunk", CHUNKS)
def test_pg_dump_constructs_pass_unchanged_at_any_chunk_size(chunk: int) -> None:
    assert _run(PASSING, chunk) == PASSING


@pytest.mark.parametrize("chunk", (1, 5, 4096))
def test_ownership_and_privileges_are_handed_over_in_order_with_the_settings_they_run_under(chunk: int) -> None:
    deferred: list[bytes] = []
    out = _run(PASSING, chunk, deferred)
    kept = [line for line in deferred if line.startswith((b"SET", b"SELECT pg_catalog.set_config"))]
    handed = [line for line in deferred if line not in kept]
    assert handed == [b"ALTER TABLE shop.t OWNER TO alice;\n", b"ALTER LARGE OBJECT 16385 OWNER TO alice;\n",
                      b"GRANT SELECT ON TABLE shop.t TO bob;\n", b"REVOKE ALL ON SCHEMA public FROM PUBLIC;\n",
                      b"ALTER DEFAULT PRIVILEGES FOR ROLE alice IN SCHEMA shop GRANT SELECT ON TABLES TO PUBLIC;\n"]
    assert kept[0] == b"SET statement_timeout = 0;\n"
    for line in handed:
        assert line not in out
    assert b"COPY shop.t" in out and b"SET statement_timeout" in out


REFUSED = {
    b"COPY (SELECT 1) TO PROGRAM 'psql -d src -c \"DELETE FROM t\"';": "COPY ... TO PROGRAM",
    b"copy t from program 'id';": "COPY ... FROM PROGRAM",
    b"COPY t FROM '/etc/passwd';": "COPY ... FROM",
    b"COPY t TO '/tmp/x';": "COPY ... TO",
    b"ALTER DATABASE src SET work_mem = '1MB';": "ALTER DATABASE src",
    b'ALTER DATABASE "DST" RESET ALL;': "ALTER DATABASE DST",
    b"CREATE DATABASE other;": "CREATE DATABASE other",
    b"DROP DATABASE src;": "DROP DATABASE src",
    b"ALTER SYSTEM SET work_mem = '1MB';": "ALTER SYSTEM",
    b"CREATE ROLE x SUPERUSER;": "CREATE ROLE",
    b"CREATE USER x;": "CREATE USER",
    b"ALTER USER postgres PASSWORD 'x';": "ALTER USER",
    b"DROP ROLE alice;": "DROP ROLE",
    b"CREATE TABLESPACE t LOCATION '/tmp';": "CREATE TABLESPACE",
    b"GRANT pg_execute_server_program TO alice;": "membership",
    b"GRANT ALL ON DATABASE src TO PUBLIC;": "ON DATABASE src",
    b"COMMENT ON DATABASE src IS 'x';": "ON DATABASE src",
    b"SET ROLE postgres;": "SET ROLE postgres",
    b"SET SESSION role TO 'postgres';": "SET ROLE",
    b"SET LOCAL SESSION AUTHORIZATION postgres;": "SET SESSION AUTHORIZATION",
    b"SELECT pg_catalog.set_config('role', 'postgres', false);": "set_config",
    b"SELECT * FROM dblink('dbname=src', 'DELETE FROM t') AS x(a text);": "dblink()",
    b"SELECT public.dblink_exec('dbname=src', 'DELETE FROM t');": "dblink_exec()",
    b"INSERT INTO t VALUES (lo_import('/etc/passwd'));": "lo_import()",
    b"SELECT lo_export(16385, '/tmp/x');": "lo_export()",
    b'CREATE TABLE x AS SELECT "pg_read_file"(\'/etc/passwd\');': "pg_read_file()",
    b"CREATE EXTENSION IF NOT EXISTS dblink;": "CREATE EXTENSION dblink",
    b"CREATE EXTENSION postgres_fdw;": "CREATE EXTENSION postgres_fdw",
    b"CREATE EXTENSION adminpack;": "CREATE EXTENSION adminpack",
    b'CREATE EXTENSION "file_fdw";': "CREATE EXTENSION file_fdw",
    b"CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw;": "CREATE SERVER",
    b"IMPORT FOREIGN SCHEMA public FROM SERVER s INTO x;": "IMPORT",
    b"CREATE SUBSCRIPTION s CONNECTION 'dbname=src' PUBLICATION p;": "CREATE SUBSCRIPTION",
    b"DO $$BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''id'''; END$$;": "DO",
    b"SELECT public.evil();": "evil()",
    b"LOAD 'somelib';": "LOAD",
    b"REASSIGN OWNED BY postgres TO x;": "REASSIGN OWNED",
    b"DROP OWNED BY postgres;": "DROP OWNED",
    b"SET client_encoding = 'SJIS';": "SJIS",
    b"COPY (SELECT 1) TO PROGRAM 'id'": "COPY ... TO PROGRAM",  # unterminated: psql runs it at the end
}


@pytest.mark.parametrize("statement", sorted(REFUSED))
def test_a_statement_reaching_beyond_the_target_is_refused_in_one_line_naming_it(statement: bytes) -> None:
    for chunk in (1, 4096):
        with pytest.raises(TransferError) as err:
            _run(b"SET statement_timeout = 0;\nCOPY t (a) FROM stdin;\nx\n\\.\n" + statement + b"\n", chunk)
        message = str(err.value)
        assert "\n" not in message and REFUSED[statement] in message, message
        assert message.startswith("restore into database dst: the dump runs ")


AMBIGUOUS = {
    b"SELECT 1 \\! id\n;": "meta-command",
    b"\\! id": "meta-command",
    b"SELECT :'DBNAME';": "psql variable :DBNAME",
    b"SELECT E'\xc3\xa9\\'';": "non-ASCII",
    b"SELECT 1e'x';": "number runs into a string",
    b"COPY t (a) FROM stdin; COPY (SELECT 1) TO PROGRAM 'id';\n1\n\\.": "follows COPY",
}


@pytest.mark.parametrize("text", sorted(AMBIGUOUS))
def test_what_psql_could_read_differently_is_refused(text: bytes) -> None:
    for chunk in (1, 4096):
        with pytest.raises(TransferError, match=AMBIGUOUS[text]):
            _run(text + b"\n", chunk)


def test_sql_hidden_in_copy_data_strings_comments_and_parentheses_is_read_as_psql_reads_it() -> None:
    # COPY data, a string, a comment: not statements
    hidden = (b"COPY t (a) FROM stdin;\nCOPY (SELECT 1) TO PROGRAM 'id';\n\\.\n"
              b"SELECT pg_catalog.set_config('search_path', 'x; COPY y TO PROGRAM z', false);\n"
              b"-- COPY (SELECT 1) TO PROGRAM 'id';\n")
    assert _run(hidden, 3) == hidden
    # a ";" inside parentheses does not end the statement for psql: COPY ... FROM stdin there starts no data
    with pytest.raises(TransferError, match="TO PROGRAM"):
        _run(b"SELECT (1;\nCOPY t FROM stdin;\n) ; COPY (SELECT 1) TO PROGRAM 'id';\n\\.\n", 2)


@pytest.mark.parametrize("chunk", (1, 4096))
def test_a_string_whose_end_depends_on_standard_conforming_strings_is_read_as_declared_and_pinned(chunk: int) -> None:
    # read with standard_conforming_strings on (as pg_dump declares it): 'a\' ends, and a COPY PROGRAM follows
    with pytest.raises(TransferError, match="TO PROGRAM"):
        _run(b"SET standard_conforming_strings = on;\nSELECT 'a\\'; COPY (SELECT 1) TO PROGRAM 'id'; --';\n", chunk)
    # an INSERT of a value with a backslash before a quote passes, after a SET of the value it was read with
    insert = b"INSERT INTO public.t VALUES (1, 'it\\''s');\n"
    assert _run(insert, chunk) == b"\nSET standard_conforming_strings = on;\n" + insert
    declared_off = b"SET standard_conforming_strings TO off;\n" + b"INSERT INTO public.t VALUES (1, 'it\\'s');\n"
    out = _run(declared_off, chunk)
    assert out.endswith(b"\nSET standard_conforming_strings = off;\n\nINSERT INTO public.t VALUES (1, 'it\\'s');\n")
    with pytest.raises(TransferError, match="set_config"):
        _run(b"SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\n", chunk)
    with pytest.raises(TransferError, match="ALTER DATABASE dst SET client_encoding"):
        _run(b"ALTER DATABASE dst SET client_encoding = 'SJIS';\n", chunk)


_ROW_PARTS = (b"a", b"\\N", b"\\\\", b"\\.", b"\\.x", b".", b"\t", b"\r", b"\\", b"COPY x TO PROGRAM 'id';")


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from(_ROW_PARTS), min_size=1, max_size=6), max_size=12),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12), crlf=st.booleans())
def test_the_end_of_copy_data_is_found_wherever_the_stream_is_cut(rows: list[list[bytes]], cuts: list[int],
                                                                  crlf: bool) -> None:
    """Rows that look like the end marker pass untouched, and the real `\\.` line ends the block at any cut:
    a statement after it is judged (and refused), never passed as data."""
    body = b"".join(b"".join(parts).replace(b"\n", b"") + b"\n" for parts in rows
                    if b"".join(parts).rstrip(b"\r") != b"\\.")
    block = b"COPY t (a) FROM stdin;\n" + body + (b"\\.\r\n" if crlf else b"\\.\n")
    f = PgTargetConfine("dst")
    out, pos = b"", 0
    for cut in sorted({min(c, len(block)) for c in cuts} | {len(block)}):
        out += f.feed(block[pos:cut])
        pos = cut
    assert out + f.flush() == block
    f = PgTargetConfine("dst")
    hostile = block + b"COPY (SELECT 1) TO PROGRAM 'id';\n"
    with pytest.raises(TransferError, match="PROGRAM"):
        pos = 0
        for cut in sorted({min(c, len(hostile)) for c in cuts} | {len(hostile)}):
            f.feed(hostile[pos:cut])
            pos = cut
        f.flush()
