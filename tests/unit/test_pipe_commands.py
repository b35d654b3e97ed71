"""The commands each provider puts at the ends of the pipe: connection from the AppBinding, argv and env."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from providers.databases import get_provider
from providers.databases.base import TaskParams
from stashplan.errors import TransferError

SECRET = "pa$$ w0rd"


def ab(client_config: dict) -> dict:
    return {
        "kind": "AppBinding",
        "metadata": {"name": "db", "namespace": "ns"},
        "spec": {"clientConfig": client_config},
    }


@pytest.mark.parametrize("database", ["postgres", "mysql", "mariadb", "redis"])
def test_password_is_only_in_env_never_in_argv(database: str, tmp_path: Path) -> None:
    provider = get_provider(database)
    conn = provider.connection(
        ab({"url": "x://127.0.0.1:1234/" + ("1" if database == "redis" else "db1")}),
        {"username": "u", "password": SECRET},
        tmp_path,
    )
    specs = [
        provider.probe(conn, TaskParams()).spec,
        provider.dump(conn, TaskParams()),
        provider.restore(conn, TaskParams()).spec,
    ]
    if database in ("mysql", "mariadb"):  # into a named database: the client connects as its own account
        specs.pop()
        restore = provider.restore(conn, TaskParams()).spec
        assert SECRET not in restore.env.values() and restore.env["MYSQL_PWD"] not in " ".join(restore.argv)
    for spec in specs:
        assert not any(SECRET in a for a in spec.argv), spec.argv
        assert SECRET in spec.env.values()
        assert SECRET not in repr(spec) and SECRET not in repr(conn)


def test_postgres_service_with_sslmode_and_ca_bundle(tmp_path: Path) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    conn = get_provider("postgres").connection(
        ab(
            {
                "service": {
                    "name": "pg.ns.svc",
                    "port": 5433,
                    "path": "/",
                    "query": "sslmode=verify-full",
                    "scheme": "postgresql",
                },
                "caBundle": base64.b64encode(pem).decode(),
            }
        ),
        {"POSTGRES_USER": "admin", "POSTGRES_PASSWORD": "p"},
        tmp_path,
    )
    assert (conn.host, conn.port, conn.database, conn.username) == ("pg.ns.svc", 5433, "", "admin")
    spec = get_provider("postgres").dump(conn, TaskParams.parse("pg_dumpall", "--clean --if-exists"))
    assert spec.argv == (
        "pg_dumpall",
        "--host=pg.ns.svc",
        "--port=5433",
        "--username=admin",
        "--clean",
        "--if-exists",
    )
    assert spec.env["PGSSLMODE"] == "verify-full"
    assert Path(spec.env["PGSSLROOTCERT"]).read_bytes() == pem


def test_postgres_database_in_url_selects_pg_dump_of_that_database(tmp_path: Path) -> None:
    provider = get_provider("postgres")
    conn = provider.connection(ab({"url": "postgresql://db.local/sales?sslmode=disable"}), {}, tmp_path)
    assert conn.port == 5432 and conn.username == "postgres"
    assert provider.dump(conn, TaskParams.parse("pg_dumpall")).argv[0] == "pg_dump"
    assert provider.dump(conn, TaskParams()).argv[-1] == "--dbname=sales"
    restore = provider.restore(conn, TaskParams()).spec.argv
    assert "--single-transaction" in restore and "--dbname=sales" in restore
    assert "--set=ON_ERROR_STOP=1" in restore


def test_postgres_rejects_unknown_backup_cmd(tmp_path: Path) -> None:
    provider = get_provider("postgres")
    conn = provider.connection(ab({"url": "postgresql://h/"}), {}, tmp_path)
    with pytest.raises(TransferError, match=r"backupCMD: must be one of pg_dumpall, pg_dump \(a tool name, found on PATH\), not 'rm'"):
        provider.dump(conn, TaskParams.parse("rm"))


def test_mysql_all_databases_unless_url_names_one(tmp_path: Path) -> None:
    provider = get_provider("mysql")
    everything = provider.connection(ab({"url": "mysql://h:3307/"}), {"username": "root"}, tmp_path)
    argv = provider.dump(everything, TaskParams()).argv
    assert argv[0] == "mysqldump" and "--single-transaction" in argv and argv[-1] == "--all-databases"
    one = provider.connection(ab({"url": "mysql://h:3307/shop"}), {"username": "root"}, tmp_path)
    assert provider.dump(one, TaskParams()).argv[-2:] == ("--", "shop")
    assert "--database=shop" in provider.restore(one, TaskParams()).spec.argv
    assert get_provider("mariadb").dump(one, TaskParams()).argv[0] == "mariadb-dump"


def test_redis_db_number_goes_to_dump_helper_and_restore_pipe(tmp_path: Path) -> None:
    provider = get_provider("redis")
    conn = provider.connection(ab({"url": "rediss://cache:6380/4"}), {"password": "p"}, tmp_path)
    dump = provider.dump(conn, TaskParams()).argv
    assert "providers.databases.redis_stream" in dump and "--db=4" in dump and "--tls" in dump
    restore = provider.restore(conn, TaskParams()).spec.argv
    assert restore[-3:] == ("-n", "4", "--pipe") and restore[0] == "redis-cli"
    with pytest.raises(TransferError, match="redis database must be a number"):
        provider.connection(ab({"url": "redis://cache/abc"}), {}, tmp_path)


def test_sqlite_url_with_three_or_four_slashes_names_an_absolute_file(tmp_path: Path) -> None:
    provider = get_provider("sqlite")
    for url in ("sqlite:///tmp/a.db", "sqlite:////tmp/a.db"):
        assert provider.connection(ab({"url": url}), {}, tmp_path).path == "/tmp/a.db"
    with pytest.raises(TransferError, match=r"must be sqlite:///abs/path\.db"):
        provider.connection(ab({"url": "sqlite://relative.db"}), {}, tmp_path)


def test_appbinding_without_client_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TransferError, match=r"AppBinding ns/db: spec\.clientConfig needs url or service"):
        get_provider("postgres").connection(ab({}), {}, tmp_path)


def test_unknown_database_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown database 'oracle'; known: postgres, mysql"):
        get_provider("oracle")


def test_url_and_service_together_take_host_and_port_from_the_service_and_the_database_from_the_url(
    tmp_path: Path,
) -> None:
    mysql = get_provider("mariadb")
    both = {"service": {"name": "sample-mariadb", "port": 3307, "path": "/", "scheme": "mysql"},
            "url": "tcp(sample-mariadb:3306)/shop?tls=false"}
    conn = mysql.connection(ab(both), {}, tmp_path)
    assert (conn.host, conn.port, conn.database, conn.query) == ("sample-mariadb.ns.svc", 3307, "shop",
                                                                {"tls": "false"})
    conn = mysql.connection(ab({**both, "url": "tcp(sample-mariadb:3306)/", "service": {
        "name": "db", "path": "/kept", "query": "sslmode=require"}}), {}, tmp_path)
    assert (conn.host, conn.port, conn.database, conn.query) == ("db.ns.svc", 3306, "kept", {"sslmode": "require"})


def test_kubedb_dsn_urls_are_read_as_the_go_mysql_driver_reads_them(tmp_path: Path) -> None:
    mysql = get_provider("mysql")
    conn = mysql.connection(ab({"url": "app@tcp([::1]:3310)/orders"}), {}, tmp_path)
    assert (conn.host, conn.port, conn.database, conn.username) == ("::1", 3310, "orders", "app")
    conn = mysql.connection(ab({"url": "tcp(10.0.0.7)/"}), {}, tmp_path)
    assert (conn.host, conn.port, conn.database) == ("10.0.0.7", 3306, "")
    with pytest.raises(TransferError, match=r"AppBinding ns/db: spec\.clientConfig\.url: only tcp\(host:port\)"):
        mysql.connection(ab({"url": "unix(/run/mysqld/mysqld.sock)/orders"}), {}, tmp_path)
