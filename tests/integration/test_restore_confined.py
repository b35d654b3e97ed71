"""A restore writes only its target database: a MariaDB dump of `--databases src` restored into `dst` leaves
`src` unchanged, and a psql restore stream can neither run `\\!` nor `\\connect` elsewhere (real servers)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from providers.databases import Connection, TaskParams, get_provider
from stashplan.errors import TransferError
from tests.fixtures.restore_stream import stream_into


def _restore(database: str, name: str, stream: bytes) -> None:
    provider = get_provider(database)
    port = 3306 if database == "mariadb" else 5432
    user = "root" if database == "mariadb" else "postgres"
    conn = Connection(scheme="", host="127.0.0.1", port=port, database=name, query={}, username=user, password="")
    spec = provider.restore(conn, TaskParams())
    stream_into(spec, stream)


def _mariadb(sql: str) -> str:
    return subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", "--batch", "-N", "-e", sql], check=True,
                          capture_output=True, text=True).stdout


def test_a_mariadb_dump_of_another_database_restores_into_the_target_and_leaves_the_source_alone() -> None:
    src, dst = f"src_{uuid.uuid4().hex[:8]}", f"dst_{uuid.uuid4().hex[:8]}"
    try:
        _mariadb(f"CREATE DATABASE {src}; CREATE TABLE {src}.t (id INT PRIMARY KEY, v TEXT);"
                 f"INSERT INTO {src}.t VALUES (1, 'USE other;\\nfirst'), (2, 'second'); CREATE DATABASE {dst};")
        dump = subprocess.run(["mariadb-dump", "-h127.0.0.1", "-uroot", "--databases", src], check=True,
                              capture_output=True).stdout
        assert f"USE `{src}`".encode() in dump
        _mariadb(f"UPDATE {src}.t SET v = 'changed after the backup' WHERE id = 2")
        before = _mariadb(f"CHECKSUM TABLE {src}.t")
        _restore("mariadb", dst, dump)
        assert _mariadb(f"CHECKSUM TABLE {src}.t") == before  # the source is untouched
        assert _mariadb(f"SELECT v FROM {src}.t WHERE id = 2").strip() == "changed after the backup"
        assert _mariadb(f"SELECT id FROM {dst}.t ORDER BY id").split() == ["1", "2"]
    finally:
        _mariadb(f"DROP DATABASE IF EXISTS {src}; DROP DATABASE IF EXISTS {dst}")


def test_a_mariadb_dump_of_two_databases_is_refused_for_a_named_target() -> None:
    dst = f"dst_{uuid.uuid4().hex[:8]}"
    _mariadb(f"CREATE DATABASE {dst}")
    try:
        with pytest.raises(TransferError, match="holds more than one database"):
            _restore("mariadb", dst, b"USE `a1`;\nSELECT 1;\nUSE `b2`;\nSELECT 2;\n")
    finally:
        _mariadb(f"DROP DATABASE IF EXISTS {dst}")


def _psql(sql: str, db: str = "postgres") -> str:
    return subprocess.run(["psql", "-h127.0.0.1", "-Upostgres", "-XAtq", "-d", db, "-c", sql], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture()
def pg_pair() -> tuple[str, str]:
    src, dst = f"src_{uuid.uuid4().hex[:8]}", f"dst_{uuid.uuid4().hex[:8]}"
    _psql(f"CREATE DATABASE {src}")
    _psql(f"CREATE DATABASE {dst}")
    _psql("CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')", src)
    yield src, dst
    for db in (src, dst):
        _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _pg_sum(db: str) -> str:
    return _psql("SELECT md5(string_agg(id::text || v, ',' ORDER BY id)) FROM t", db)


def test_a_psql_restore_stream_cannot_run_a_shell_command(pg_pair: tuple[str, str], tmp_path: Path) -> None:
    _, dst = pg_pair
    touched = tmp_path / "x"
    with pytest.raises(TransferError, match=r"runs the meta-command \\!"):
        _restore("postgres", dst, f"CREATE TABLE u (id int);\n\\! touch {touched}\n".encode())
    assert not touched.exists()
    # the same command mid-line: the statement filter refuses it (and psql's restricted mode would)
    with pytest.raises(TransferError, match="meta-command"):
        _restore("postgres", dst, f"SELECT 1; \\! touch {touched}\n".encode())
    assert not touched.exists()


def test_a_pg_dump_with_create_and_connect_into_a_named_target_is_refused_and_the_source_is_unchanged(
    pg_pair: tuple[str, str]
) -> None:
    src, dst = pg_pair
    dump = subprocess.run(["pg_dump", "-h127.0.0.1", "-Upostgres", "--clean", "--create", "-d", src], check=True,
                          capture_output=True).stdout
    assert f"\\connect {src}".encode() in dump
    before = _pg_sum(src)
    with pytest.raises(TransferError, match=rf"runs DROP DATABASE {src}, .* back up with pg_dump without --create"):
        _restore("postgres", dst, dump)
    assert _pg_sum(src) == before
    plain = subprocess.run(["pg_dump", "-h127.0.0.1", "-Upostgres", "-d", src], check=True, capture_output=True).stdout
    _psql("UPDATE t SET v = 'changed' WHERE id = 2", src)
    before = _pg_sum(src)
    _restore("postgres", dst, plain)  # pg_dump's own \restrict/\unrestrict lines are dropped
    assert _pg_sum(src) == before
    assert _psql("SELECT count(*) FROM t", dst).strip() == "2"
