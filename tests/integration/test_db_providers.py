"""Each database provider against its real server: dump through the pipe, change data, restore, compare."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from providers.databases import get_provider, wait_ready
from providers.databases.base import TaskParams
from stashplan.errors import TransferError
from stashplan.transfer.pipe import ProcessReader, ProcessWriter
from tests.fixtures.databases import MariaDatabase, PgDatabase, PrivatePostgres, RedisInstance


def appbinding(url: str, name: str = "db") -> dict:
    return {
        "kind": "AppBinding",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clientConfig": {"url": url}, "secret": {"name": f"{name}-auth"}},
    }


def dump(
    database: str, ab: dict, secret: dict[str, str], tmp: Path, params: TaskParams | None = None
) -> bytes:
    provider = get_provider(database)
    conn = provider.connection(ab, secret, tmp)
    params = params or TaskParams()
    wait_ready(provider.probe(conn, params), 10, interval=0.2)
    with ProcessReader(provider.dump(conn, params)) as reader:
        return reader.read()


def restore(database: str, ab: dict, secret: dict[str, str], tmp: Path, data: bytes) -> None:
    provider = get_provider(database)
    conn = provider.connection(ab, secret, tmp)
    spec = provider.restore(conn, TaskParams())
    ok = False
    try:
        if spec.start is not None:
            spec.start()
        with ProcessWriter(spec.spec, stream_filter=spec.make_filter() if spec.make_filter else None) as writer:
            for i in range(0, len(data), 4096):
                writer.write(data[i : i + 4096])
            writer.finish()
            ok = True
    finally:
        if spec.finish:
            spec.finish(ok)


def test_postgres_dump_restores_into_a_fresh_database(
    pg_database: Callable[[], PgDatabase], tmp_path: Path
) -> None:
    src, dst = pg_database(), pg_database()
    src.sql(
        "CREATE TABLE items(id serial primary key, name text); INSERT INTO items(name) "
        "SELECT 'item-' || g FROM generate_series(1, 500) g"
    )
    data = dump("postgres", appbinding(src.url), {"username": "postgres"}, tmp_path)
    src.sql("DELETE FROM items WHERE id > 10")
    restore("postgres", appbinding(dst.url), {"username": "postgres"}, tmp_path, data)
    assert dst.sql("SELECT count(*), max(name) FROM items") == "500|item-99"
    assert src.sql("SELECT count(*) FROM items") == "10"


def test_postgres_restore_fails_with_server_message_and_rolls_back(
    pg_database: Callable[[], PgDatabase], tmp_path: Path
) -> None:
    dst = pg_database()
    bad = b"CREATE TABLE kept(a int);\nINSERT INTO missing VALUES (1);\n"
    with pytest.raises(TransferError, match=r'psql exited with code 3: .*relation "missing" does not exist'):
        restore("postgres", appbinding(dst.url), {}, tmp_path, bad)
    assert dst.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'kept'") == "0"


def test_postgres_wrong_password_fails_with_clear_message(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    ab = appbinding(f"postgresql://127.0.0.1:{private_postgres.port}/postgres")
    with pytest.raises(TransferError, match="password authentication failed"):
        dump("postgres", ab, {"username": "postgres", "password": "wrong"}, tmp_path)


def test_postgres_private_instance_dump_with_password_from_secret(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    private_postgres.sql("CREATE TABLE t(a int); INSERT INTO t VALUES (42)")
    ab = appbinding(f"postgresql://127.0.0.1:{private_postgres.port}/postgres")
    data = dump(
        "postgres",
        ab,
        {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": private_postgres.password},
        tmp_path,
    )
    assert b"COPY public.t (a) FROM stdin;\n42\n" in data


def test_mariadb_dump_restores_into_a_fresh_database(
    mariadb_database: Callable[[], MariaDatabase], tmp_path: Path
) -> None:
    src, dst = mariadb_database(), mariadb_database()
    src.sql(
        "CREATE TABLE items(id int primary key, name varchar(40)) ENGINE=InnoDB; "
        "INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')"
    )
    data = dump("mariadb", appbinding(src.url), {"username": "root"}, tmp_path)
    assert b"CREATE DATABASE" not in data
    src.sql("DELETE FROM items")
    restore("mariadb", appbinding(dst.url), {"username": "root"}, tmp_path, data)
    assert dst.sql("SELECT group_concat(name ORDER BY id) FROM items") == "one,two,three"


def test_mariadb_wrong_password_fails_fast_with_access_denied(tmp_path: Path) -> None:
    ab = appbinding("mysql://127.0.0.1:3306/mysql")
    with pytest.raises(TransferError, match=r"not usable: .*Access denied"):
        dump("mariadb", ab, {"username": "root", "password": "wrong"}, tmp_path)


def test_redis_dump_of_one_db_restores_into_another_db(redis_instance: RedisInstance, tmp_path: Path) -> None:
    r = redis_instance
    r.cmd("SET", "greeting", "hello", db=3)
    r.cmd("HSET", "user:1", "name", "ada", "lang", "en", db=3)
    r.cmd("RPUSH", "queue", "a", "b", "c", db=3)
    r.cmd("SET", "temp", "x", "EX", "1000", db=3)
    r.cmd("SET", "other-db", "not mine", db=4)
    data = dump("redis", appbinding(r.url(3)), {}, tmp_path)
    r.cmd("SET", "greeting", "changed", db=3)
    restore("redis", appbinding(r.url(7)), {}, tmp_path, data)
    assert r.cmd("GET", "greeting", db=7) == "hello"
    assert r.cmd("HGET", "user:1", "name", db=7) == "ada"
    assert r.cmd("LRANGE", "queue", "0", "-1", db=7).split() == ["a", "b", "c"]
    assert 0 < int(r.cmd("TTL", "temp", db=7)) <= 1000
    assert r.cmd("DBSIZE", db=7) == "4"


def test_redis_with_password_uses_env_and_wrong_password_is_fatal(
    redis_instance_with_password: RedisInstance, tmp_path: Path
) -> None:
    r = redis_instance_with_password
    r.cmd("SET", "k", "v", db=1)
    data = dump("redis", appbinding(r.url(1)), {"password": r.password}, tmp_path)
    assert r.password.encode() not in data
    restore("redis", appbinding(r.url(2)), {"password": r.password}, tmp_path, data)
    assert r.cmd("GET", "k", db=2) == "v"
    with pytest.raises(TransferError, match=r"not usable: .*(WRONGPASS|invalid)"):
        dump("redis", appbinding(r.url(1)), {"password": "wrong"}, tmp_path)


def test_sqlite_dump_restores_into_a_new_file(sqlite_file: Path, tmp_path: Path) -> None:
    data = dump("sqlite", appbinding(f"sqlite://{sqlite_file}"), {}, tmp_path)
    subprocess.run(["sqlite3", str(sqlite_file), "DELETE FROM items"], check=True)
    target = tmp_path / "restored.db"
    restore("sqlite", appbinding(f"sqlite://{target}"), {}, tmp_path, data)
    rows = subprocess.run(
        ["sqlite3", str(target), "SELECT group_concat(name) FROM items"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert rows == "alpha,beta,gamma"
    assert not (tmp_path / "restored.db.restoring").exists()


def test_sqlite_failed_restore_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "restored.db"
    with pytest.raises(TransferError, match="sqlite3 exited with code 1"):
        restore("sqlite", appbinding(f"sqlite://{target}"), {}, tmp_path, b"CREATE TABLE a(x);\nNOT SQL;\n")
    assert not target.exists()
    assert not (tmp_path / "restored.db.restoring").exists()


def test_sqlite_missing_file_is_not_ready(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match=r"not usable: .*unable to open"):
        dump("sqlite", appbinding(f"sqlite://{tmp_path}/absent.db"), {}, tmp_path)
