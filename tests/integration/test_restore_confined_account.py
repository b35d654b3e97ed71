"""A MariaDB restore into a named database runs as a throwaway account that can write that database only (real
server): a dump whose statements name another database (`src.t`, a trigger or procedure writing it, a DEFINER,
RENAME, GRANT, OUTFILE) fails and leaves that database as it was; a normal dump restores; the account is gone
after success and failure (kept locked only as the definer of restored triggers, which then run confined)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from providers.databases import Connection, TaskParams, get_provider
from stashplan.errors import TransferError
from stashplan.transfer.pipe import ProcessWriter


def _mariadb(sql: str, user: str = "root", password: str = "") -> str:
    return subprocess.run(["mariadb", "-h127.0.0.1", f"-u{user}", "--batch", "-N", "-e", sql], check=True,
                          capture_output=True, text=True, env={"MYSQL_PWD": password} if password else None).stdout


def _restore(dst: str, stream: bytes, user: str = "root", password: str = "", *, filtered: bool = True,
             seen: list[str] | None = None) -> str:
    """Runs a restore as the transfer does (start, client, finish); returns the client's --user (also appended
    to `seen`). Unfiltered, the stream goes to the client as it is (what the account's grant alone holds)."""
    conn = Connection(scheme="", host="127.0.0.1", port=3306, database=dst, query={}, username=user,
                      password=password)
    spec = get_provider("mariadb").restore(conn, TaskParams())
    account = next(a.split("=", 1)[1] for a in spec.spec.argv if a.startswith("--user="))
    if seen is not None:
        seen.append(account)
    ok = False
    try:
        start = getattr(spec, "start", None)
        if start is not None:
            start()
        with ProcessWriter(spec.spec, stream_filter=spec.make_filter() if spec.make_filter and filtered else None) as writer:
            for i in range(0, len(stream), 4096):
                writer.write(stream[i:i + 4096])
            writer.finish()
        ok = True
    finally:
        if spec.finish is not None:
            spec.finish(ok)
    return account


def _state(db: str) -> str:
    """Every table of `db` with its checksum: identical before and after means nothing in `db` was written."""
    tables = _mariadb(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}' "
                      "ORDER BY 1").split()
    sums = [_mariadb(f"CHECKSUM TABLE `{db}`.`{t}` EXTENDED") for t in tables]
    routines = _mariadb(f"SELECT routine_name FROM information_schema.routines WHERE routine_schema = '{db}'")
    return "\n".join([*tables, *sums, routines])


def _accounts(prefix: str = "stashplan\\_r\\_") -> set[str]:
    return set(_mariadb(f"SELECT user FROM mysql.user WHERE user LIKE '{prefix}%'").split())


@pytest.fixture()
def pair() -> Iterator[tuple[str, str]]:
    src, dst = f"src_{uuid.uuid4().hex[:8]}", f"dst_{uuid.uuid4().hex[:8]}"
    _mariadb(f"CREATE DATABASE {src}; CREATE TABLE {src}.t (id INT PRIMARY KEY, v TEXT);"
             f"INSERT INTO {src}.t VALUES (1, 'one'), (2, 'two'); CREATE DATABASE {dst};")
    yield src, dst
    _mariadb(f"DROP DATABASE IF EXISTS {src}; DROP DATABASE IF EXISTS {dst}")


_HEAD = "CREATE TABLE `t` (`id` int NOT NULL PRIMARY KEY, `v` text);\nINSERT INTO `t` VALUES (1,'x');\n"
_HOSTILE = [
    "INSERT INTO SRC.t VALUES (99, 'written');",
    "INSERT /* c */ IGNORE INTO `SRC` . `t` VALUES (99, 'written');",
    "REPLACE INTO SRC.t VALUES (1, 'replaced');",
    "UPDATE SRC.t SET v = 'updated';",
    "DELETE FROM SRC.t;",
    "CREATE TABLE SRC.u (a INT);",
    "DROP TABLE SRC.t;",
    "TRUNCATE TABLE SRC.t;",
    "ALTER TABLE SRC.t ADD COLUMN w INT;",
    "RENAME TABLE SRC.t TO t_taken;",
    "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW INSERT INTO SRC.t VALUES (98, 'trigger');\n"
    "INSERT INTO t VALUES (2, 'fires');",
    "DELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN DELETE FROM SRC.t; END;;\nDELIMITER ;\n"
    "CALL p();",
    "GRANT ALL PRIVILEGES ON SRC.* TO CURRENT_USER;",
    "SELECT * FROM t INTO OUTFILE '/tmp/stashplan-outfile-UNIQ';",
    "SELECT 1 FROM dual WHERE (SELECT COUNT(*) FROM SRC.t) > 0;",  # reading another database fails too
]


@pytest.mark.parametrize("filtered", [True, False], ids=["filtered", "grant-only"])
@pytest.mark.parametrize("hostile", _HOSTILE)
def test_a_dump_that_names_another_database_fails_and_that_database_is_unchanged(
        pair: tuple[str, str], hostile: str, filtered: bool) -> None:
    """With the stream filter (which may refuse first) and without it (the account's grant alone holds)."""
    src, dst = pair
    before, seen = _state(src), []
    stream = (("USE `SRC`;\n" if filtered else "") + _HEAD + hostile + "\n").replace("SRC", src) \
        .replace("UNIQ", uuid.uuid4().hex).encode()
    with pytest.raises(TransferError) as failed:
        _restore(dst, stream, filtered=filtered, seen=seen)
    assert "\n" not in str(failed.value)
    assert _state(src) == before
    assert seen[0] not in _accounts()  # the restore's account is gone


def test_a_normal_dump_restores_into_the_target_and_leaves_no_account(pair: tuple[str, str]) -> None:
    src, dst = pair
    dump = subprocess.run(["mariadb-dump", "-h127.0.0.1", "-uroot", "--databases", src], check=True,
                          capture_output=True).stdout
    _mariadb(f"UPDATE {src}.t SET v = 'after the backup' WHERE id = 2")
    before = _state(src)
    account = _restore(dst, dump)
    assert account.startswith("stashplan_r_") and account not in _accounts()
    assert _state(src) == before
    assert _mariadb(f"SELECT id, v FROM {dst}.t ORDER BY id") == "1\tone\n2\ttwo\n"


def test_a_dump_with_triggers_and_routines_restores_and_they_work_after_the_restore(pair: tuple[str, str]) -> None:
    src, dst = pair
    _mariadb(f"USE {src}; CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.v = CONCAT(NEW.v, '!');"
             f"CREATE VIEW w AS SELECT id FROM t; CREATE PROCEDURE p() SELECT COUNT(*) FROM t")
    dump = subprocess.run(["mariadb-dump", "-h127.0.0.1", "-uroot", "--routines", "--triggers", "--databases", src],
                          check=True, capture_output=True).stdout
    assert b"DEFINER=`root`@`" in dump
    account = _restore(dst, dump)
    try:
        assert _mariadb(f"SELECT definer FROM information_schema.triggers WHERE trigger_schema = '{dst}'") \
            == f"{account}@localhost\n"
        _mariadb(f"INSERT INTO {dst}.t VALUES (3, 'three')")  # the trigger runs as the (locked) restore account
        assert _mariadb(f"SELECT v FROM {dst}.t WHERE id = 3") == "three!\n"
        assert _mariadb(f"SELECT COUNT(*) FROM {dst}.w") == "3\n" and _mariadb(f"CALL {dst}.p()") == "3\n"
        grants = _mariadb(f"SHOW GRANTS FOR '{account}'@'localhost'")
        # `_` escaped: the grant matches this database alone (batch output doubles the backslash)
        assert f"GRANT ALL PRIVILEGES ON `{dst.replace('_', chr(92) * 2 + '_')}`.*" in grants
        assert "GRANT USAGE ON *.*" in grants
        assert "SUPER" not in grants and "FILE" not in grants and grants.count("GRANT ") == 2
        with pytest.raises(subprocess.CalledProcessError) as login:
            _mariadb("SELECT 1", user=account)
        assert "locked" in login.value.stderr or "denied" in login.value.stderr
    finally:
        _mariadb(f"DROP USER IF EXISTS '{account}'@'localhost'")


def test_a_stale_account_left_by_a_killed_restore_is_removed_by_the_next_restore(pair: tuple[str, str]) -> None:
    _, dst = pair
    now = int(time.time())
    stale, granted, elsewhere = (f"stashplan_r_{now - 7200:x}_{uuid.uuid4().hex[:8]}" for _ in range(3))
    fresh = f"stashplan_r_{now:x}_{uuid.uuid4().hex[:8]}"
    everyone = [stale, granted, elsewhere, fresh]
    _mariadb("; ".join(f"CREATE USER '{a}'@'localhost' IDENTIFIED BY 'x-Y-1234'" for a in everyone))
    _mariadb(f"GRANT ALL ON `{dst.replace('_', chr(92) + '_')}`.* TO '{granted}'@'localhost';"
             f"GRANT ALL ON `{dst}x`.* TO '{elsewhere}'@'localhost'")
    try:
        _restore(dst, b"SELECT 1;\n")
        assert stale not in _accounts() and granted not in _accounts()
        assert fresh in _accounts()  # a young one may belong to a running restore
        assert elsewhere in _accounts()  # another database's: left to a restore into it (it sees its objects)
    finally:
        _mariadb("DROP USER IF EXISTS " + ", ".join(f"'{a}'@'localhost'" for a in everyone))


def test_an_appbinding_user_without_create_user_fails_with_one_line_naming_it(pair: tuple[str, str]) -> None:
    src, dst = pair
    user = f"adm_{uuid.uuid4().hex[:8]}"
    _mariadb(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw-Adm-1'; GRANT ALL ON `{dst}`.* TO "
             f"'{user}'@'localhost'")
    try:
        before = _state(src)
        with pytest.raises(TransferError, match=f"restore into database {dst}: the AppBinding's user {user} lacks "
                                                "the CREATE USER privilege") as failed:
            _restore(dst, (_HEAD.replace("SRC", src)).encode(), user=user, password="pw-Adm-1")
        assert "\n" not in str(failed.value) and "pw-Adm-1" not in str(failed.value)
        assert _state(src) == before and _mariadb(f"SELECT COUNT(*) FROM information_schema.tables WHERE "
                                                  f"table_schema = '{dst}'") == "0\n"
    finally:
        _mariadb(f"DROP USER IF EXISTS '{user}'@'localhost'")


_KILLED = """
import sys
from providers.databases import Connection, TaskParams, get_provider
from stashplan.transfer.run import _restore_one

provider = get_provider("mariadb")
confined = provider.restore

def restore(conn, params):  # says which account the client connects as
    spec = confined(conn, params)
    print(next(a for a in spec.spec.argv if a.startswith("--user=")), flush=True)
    return spec

provider.restore = restore

class Snapshots:  # stands in for the repository: streams a dump whose INSERT waits on the test's table lock
    def restore(self, snapshot, out, hostname=None, progress=None):
        out.write(b"INSERT INTO t VALUES (7, 'waits');\\n")
        print("streaming", flush=True)
        while True:
            out.write(b"SELECT 1;\\n" * 4096)  # fills the pipe, then blocks

conn = Connection(scheme="", host="127.0.0.1", port=3306, database=sys.argv[1], query={}, username="root",
                  password="")
_restore_one(provider, conn, TaskParams(), Snapshots(), "0123abcd", "host-0", None)
"""


def test_a_restore_stopped_by_sigterm_removes_its_account(pair: tuple[str, str]) -> None:
    _, dst = pair
    _mariadb(f"CREATE TABLE {dst}.t (id INT PRIMARY KEY, v TEXT)")
    locker = subprocess.Popen(["mariadb", "-h127.0.0.1", "-uroot", dst], stdin=subprocess.PIPE, text=True)
    assert locker.stdin is not None
    locker.stdin.write("LOCK TABLES t WRITE;\n")  # held while its client waits for more input
    locker.stdin.flush()
    restore = subprocess.Popen([sys.executable, "-c", _KILLED, dst], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert restore.stdout is not None
        account = restore.stdout.readline().strip().removeprefix("--user=")
        assert restore.stdout.readline() == "streaming\n"
        assert account in _accounts()  # the restore runs as its own account
        restore.send_signal(signal.SIGTERM)
        assert restore.wait(60) == 143
        assert account not in _accounts()
    finally:
        restore.kill()
        locker.kill()
        restore.wait()
        locker.wait()
