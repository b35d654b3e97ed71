"""The MariaDB/MySQL restore filter's first line of defence (the restore's account is the guarantee): a DEFINER
becomes the restore's account, and a table, routine or trigger qualified by another database than the target
is refused with one line, whatever the chunking; qualified columns are left alone."""

from __future__ import annotations

import pytest

from providers.databases.mysql_confine import MySQLConfine
from stashplan.errors import TransferError


def _run(data: bytes, target: str = "dst") -> bytes:
    outs = set()
    for chunk in (1, 5, 4096):
        f = MySQLConfine(target)
        outs.add((b"".join(f.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + f.flush())
                 .split(b"\n", 1)[1])
    assert len(outs) == 1
    return outs.pop()


@pytest.mark.parametrize(("stream", "expected"), [
    (b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW "
     b"SET NEW.v = 1 */;\n",
     b"/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER tr BEFORE INSERT ON t FOR EACH ROW "
     b"SET NEW.v = 1 */;\n"),
    (b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`%` SQL SECURITY DEFINER */\n"
     b"/*!50001 VIEW `w` AS select `t`.`id` AS `id` from `t` */;\n",
     b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n"
     b"/*!50001 VIEW `w` AS select `t`.`id` AS `id` from `t` */;\n"),
    (b"CREATE OR REPLACE DEFINER = 'app'@'10.0.0.%' PROCEDURE p() SELECT 1;\n",
     b"CREATE OR REPLACE DEFINER=CURRENT_USER PROCEDURE p() SELECT 1;\n"),
    (b"ALTER DEFINER=root@localhost VIEW w AS SELECT 1;\n", b"ALTER DEFINER=CURRENT_USER VIEW w AS SELECT 1;\n"),
    (b"UPDATE t SET definer = 'root@x' WHERE definer = 'a';\n", b"UPDATE t SET definer = 'root@x' WHERE definer = 'a';\n"),
])
def test_a_definer_becomes_the_restore_account(stream: bytes, expected: bytes) -> None:
    assert _run(stream) == expected


@pytest.mark.parametrize(("stream", "named"), [
    (b"INSERT INTO src.t VALUES (1);\n", "src.t"),
    (b"INSERT /*!40000 IGNORE */ INTO `src` . `t` VALUES (1);\n", "src.t"),
    (b"REPLACE src.t VALUES (1);\n", "src.t"),
    (b"CREATE TABLE `other`.`t` (a INT);\n", "other.t"),
    (b"DROP TABLE IF EXISTS other.t;\n", "other.t"),
    (b"DELETE QUICK FROM src.t;\n", "src.t"),
    (b"UPDATE src.t SET v = 1;\n", "src.t"),
    (b"RENAME TABLE t TO src.t;\n", "src.t"),
    (b"CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW INSERT INTO src.log VALUES (NEW.id);\n", "src.log"),
    (b"DELIMITER ;;\nCREATE PROCEDURE p() BEGIN CALL src.q(); END;;\n", "src.q"),
    (b"SELECT * FROM t JOIN src.u ON t.a = u.b;\n", "src.u"),
    (b"LOAD DATA INFILE 'x' INTO TABLE src.t;\n", "src.t"),
])
def test_a_name_qualified_by_another_database_is_refused(stream: bytes, named: str) -> None:
    with pytest.raises(TransferError, match=f"names another database than the target \\({named}\\)") as err:
        _run(b"USE src;\n" + stream)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("stream", [
    b"INSERT INTO dst.t VALUES (1);\n",
    b"INSERT INTO t VALUES (1, 'src.t'), (2, `src`.x);\n",
    b"CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.y = EXTRACT(YEAR FROM NEW.d);\n",
    b"SELECT t.a, u.b FROM t JOIN u ON t.a = u.b WHERE t.c IN (SELECT u.c FROM u);\n",
    b"CREATE VIEW w AS SELECT TRIM(LEADING 'x' FROM t.s) FROM t;\n",
])
def test_qualified_columns_and_the_target_are_left_alone(stream: bytes) -> None:
    assert _run(stream) == stream


def test_a_definer_the_filter_cannot_read_is_refused() -> None:
    with pytest.raises(TransferError, match="names a DEFINER in a form the restore does not read"):
        _run(b"CREATE DEFINER /* who */ = root PROCEDURE p() SELECT 1;\n")
