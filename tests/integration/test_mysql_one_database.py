"""`--one-database DB` in a MariaDB restore's args (Stash's documented example) on the real server: stashplan keeps
only what runs while DB is current (the client in binary mode would restore every database), with the AppBinding's
database or none; the plan-time check takes one database name with it and no other plain argument."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from providers.databases import check_task_params
from stashplan.errors import TransferError
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import MARIADB_HOST, MARIADB_PORT, MariaDatabase, mariadb
from tests.fixtures.transfer import StashWorld

SERVER_URL = f"mysql://{MARIADB_HOST}:{MARIADB_PORT}/"


def _two_databases(make: Callable[[], MariaDatabase]) -> tuple[MariaDatabase, MariaDatabase]:
    first, second = make(), make()
    for db, tag in ((first, "a"), (second, "b")):
        sql = (f"CREATE TABLE t(id int primary key, v varchar(40)); CREATE TABLE log(n int);\n"
               f"INSERT INTO t VALUES (1,'{tag}1'),(2,'USE {second.name};');\n"
               f"CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO log VALUES (NEW.id);\n"
               f"DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; SET @x = '{tag}'; END//\n")
        subprocess.run(["mariadb", "-h", MARIADB_HOST, "-P", str(MARIADB_PORT), "-uroot", db.name],
                       input=sql.encode(), check=True)
    return first, second


def _back_up(w: StashWorld, args: str, url: str = SERVER_URL) -> None:
    w.appbinding("maria", url, username="root")
    w.repository()
    w.backup_config("cfg", "maria")
    w.backup_session("cfg", "cfg-1")
    result = backup(w.cluster, w.namespace, "cfg-1", TransferOptions(database="mariadb", args=args))
    assert result.ok, result.host.error


def test_one_database_of_a_two_database_dump_restores_that_database_and_leaves_the_other(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    w = stash_world
    first, second = _two_databases(mariadb_database)
    _back_up(w, f"--databases {first.name} {second.name} --routines --add-drop-database")
    first.sql("DELETE FROM t; DROP PROCEDURE p")
    second.sql("UPDATE t SET v = 'changed' WHERE id = 1; DROP TRIGGER tr")
    w.restore_session("one", "maria")

    done = restore(w.cluster, w.namespace, "one",
                   TransferOptions(database="mariadb", args=f"--one-database {first.name}"))

    assert done.ok, done.host.error
    assert first.sql("SELECT group_concat(v ORDER BY id) FROM t") == f"a1,USE {second.name};"
    assert first.sql("SELECT count(*) FROM information_schema.routines WHERE routine_schema = DATABASE()") == "1"
    assert second.sql("SELECT group_concat(v ORDER BY id) FROM t") == f"changed,USE {second.name};"
    assert second.sql("SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE()") == "0"


def test_one_database_with_an_appbinding_database_keeps_it_from_a_whole_server_dump(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    w = stash_world
    first, second = _two_databases(mariadb_database)
    _back_up(w, f"--databases {first.name} {second.name}")
    first.sql("DELETE FROM t")
    second.sql("DELETE FROM t")
    w.appbinding("maria-first", SERVER_URL + first.name, username="root")
    w.restore_session("into-first", "maria-first")

    done = restore(w.cluster, w.namespace, "into-first",
                   TransferOptions(database="mariadb", args=f"--one-database {first.name}"))

    assert done.ok, done.host.error
    assert first.sql("SELECT group_concat(v ORDER BY id) FROM t") == f"a1,USE {second.name};"
    assert second.sql("SELECT count(*) FROM t") == "0"


def test_one_database_naming_another_database_than_the_appbindings_fails_in_one_line(
    stash_world: StashWorld, mariadb_database: Callable[[], MariaDatabase]
) -> None:
    w = stash_world
    first, second = _two_databases(mariadb_database)
    _back_up(w, f"--databases {first.name}")
    w.appbinding("maria-first", SERVER_URL + first.name, username="root")
    w.restore_session("wrong", "maria-first")

    done = restore(w.cluster, w.namespace, "wrong",
                   TransferOptions(database="mariadb", args=f"--one-database {second.name}"))

    assert not done.ok
    assert done.host.error == (f"task param args: --one-database {second.name}: the restore writes only the "
                               f"AppBinding's database, {first.name}")
    mariadb("SELECT 1")  # the server is as it was
    assert first.sql("SELECT count(*) FROM t") == "2"


def test_plan_time_check_takes_one_database_with_one_database_and_no_other_plain_argument() -> None:
    assert not check_task_params("restore", "mariadb", {"args": "--one-database testdb"})
    assert not check_task_params("restore", "mysql", {"args": "testdb -o"})
    with pytest.raises(TransferError, match="'testdb' is not allowed for mariadb: only options are"):
        check_task_params("restore", "mariadb", {"args": "testdb"})
    with pytest.raises(TransferError, match="'other' is not allowed for mariadb: --one-database takes one"):
        check_task_params("restore", "mariadb", {"args": "--one-database testdb other"})
