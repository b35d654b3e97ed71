"""AppBindings as KubeDB writes them, backed up and restored on the real servers: `url` and `service` both set
(host and port from the service, the database from the URL, as Stash's addons read them; the URL in the Go MySQL
driver's `tcp(host:port)/db` form for MariaDB), and a database named in the URL with the Task's default args
(MariaDB's `--all-databases`; PostgreSQL's `pg_dumpall`): that database alone is dumped and restored."""

from __future__ import annotations

from collections.abc import Callable

from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import MARIADB_PORT, PG_PORT, MariaDatabase, PgDatabase
from tests.fixtures.transfer import StashWorld

MARIADB_TASK_DEFAULTS = TransferOptions(database="mariadb", backup_cmd="mariadb-dump", args="--all-databases")
POSTGRES_TASK_DEFAULTS = TransferOptions(database="postgres", backup_cmd="pg_dumpall", args="")


def _kubedb_appbinding(w: StashWorld, name: str, client_config: dict, user: str) -> None:
    w.secret(f"{name}-auth", {"username": user, "password": ""})
    w.cluster.create({
        "apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
        "metadata": {"name": name, "namespace": w.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "kubedb.com"}},
        "spec": {"clientConfig": client_config, "secret": {"name": f"{name}-auth"}, "type": "kubedb.com/mariadb"},
    })


def _round_trip(w: StashWorld, src: str, dst: str, options: TransferOptions) -> None:
    w.repository()
    w.backup_config("cfg", src)
    w.backup_session("cfg", "s1")
    done = backup(w.cluster, w.namespace, "s1", options)
    assert done.ok, done.host.error
    w.restore_session("r1", dst)
    back = restore(w.cluster, w.namespace, "r1", TransferOptions(database=options.database))
    assert back.ok, back.host.error


def test_mariadb_appbinding_with_url_and_service_as_kubedb_writes_it(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    """The URL's host (a Service name only a cluster resolves) loses to the service; its database wins."""
    w = stash_world
    src, dst = mariadb_database(), mariadb_database()
    src.sql("CREATE TABLE t(id int primary key, v varchar(20)); INSERT INTO t VALUES (1,'a'),(2,'b')")
    for name, db in (("src", src.name), ("dst", dst.name)):
        _kubedb_appbinding(w, name, {
            "service": {"name": "127.0.0.1", "path": "/", "port": MARIADB_PORT, "scheme": "mysql"},
            "url": f"tcp(sample-mariadb.demo.svc:{MARIADB_PORT})/{db}",
        }, "root")
    _round_trip(w, "src", "dst", MARIADB_TASK_DEFAULTS)
    assert dst.sql("SELECT group_concat(v ORDER BY id) FROM t") == "a,b"


def test_mariadb_database_named_in_the_url_with_default_args_dumps_that_database(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    w = stash_world
    src, dst, other = mariadb_database(), mariadb_database(), mariadb_database()
    src.sql("CREATE TABLE t(id int primary key); INSERT INTO t VALUES (1),(2),(3)")
    other.sql("CREATE TABLE untouched(id int)")
    w.appbinding("src", src.url, username="root")
    w.appbinding("dst", dst.url, username="root")
    _round_trip(w, "src", "dst", MARIADB_TASK_DEFAULTS)
    assert dst.sql("SELECT count(*) FROM t") == "3"
    assert dst.sql("SHOW TABLES") == "t"  # only the named database was in the snapshot


def test_postgres_appbinding_with_url_and_service_and_default_task_params(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    src, dst = pg_database(), pg_database()
    src.sql("CREATE TABLE items(id int primary key, name text); INSERT INTO items VALUES (1, 'x'), (2, 'y')")
    for name, db in (("src", src.name), ("dst", dst.name)):
        _kubedb_appbinding(w, name, {
            "service": {"name": "127.0.0.1", "path": "/", "port": PG_PORT, "query": "sslmode=disable",
                        "scheme": "postgresql"},
            "url": f"postgresql://sample-postgres.demo.svc:{PG_PORT}/{db}",
        }, "postgres")
    _round_trip(w, "src", "dst", POSTGRES_TASK_DEFAULTS)
    assert dst.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items") == "x,y"


def test_kubedb_mysql_default_args_run_on_mariadbs_client(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    """KubeDB's MySQL args `--set-gtid-purged=OFF`: Oracle's only, left out for MariaDB's mysqldump, which
    writes no GTID_PURGED anyway; the backup runs instead of failing on an unknown variable."""
    w = stash_world
    src, dst = mariadb_database(), mariadb_database()
    src.sql("CREATE TABLE t(id int primary key); INSERT INTO t VALUES (7)")
    w.appbinding("src", src.url, username="root")
    w.appbinding("dst", dst.url, username="root")
    _round_trip(w, "src", "dst", TransferOptions(database="mysql", backup_cmd="mysqldump",
                                                 args="--all-databases --set-gtid-purged=OFF"))
    assert dst.sql("SELECT id FROM t") == "7"
