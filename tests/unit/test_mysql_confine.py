"""The MariaDB/MySQL restore filter reads a stream as the client and server do: the same output whatever the
chunking, database statements rewritten to the target, and refusals for what changes how statements are lexed."""

from __future__ import annotations

import re

import pytest

from providers.databases.mysql_confine import MySQLConfine
from stashplan.errors import TransferError

DUMP = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8mb4 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `src` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;
USE `src`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `t` (`id` int NOT NULL, `v` text) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
/*!40101 SET character_set_client = @saved_cs_client */;
INSERT INTO `t` VALUES (1,'it\\'s; USE other;\\n'),(2,"dq \\" USE x"),(3,'a''b'),(4,'-- not # a comment');
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.v = 'x;y' */;;
DELIMITER ;
/*!50003 SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION' */ ;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
"""


def _run(data: bytes, chunk: int = 65536, target: str = "dst") -> bytes:
    f = MySQLConfine(target)
    out = b"".join(f.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + f.flush()
    return re.sub(rb"stashplan_[0-9a-f]{16}", b"KEY", out)


def test_the_output_does_not_depend_on_how_the_stream_is_cut() -> None:
    whole = _run(DUMP)
    for chunk in (1, 2, 3, 7, 64):
        assert _run(DUMP, chunk) == whole


def test_database_statements_name_the_target_and_strings_are_left_alone() -> None:
    out = _run(DUMP)
    assert b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `dst`" in out
    assert b"\nUSE `dst`;" in out
    assert b"'it\\'s; USE other;\\n'" in out and b'"dq \\" USE x"' in out
    # restoring a saved sql_mode or character set writes the value the filter knows it holds
    assert b"SET SQL_MODE=@KEY_m */" in out and b"SET character_set_client = 'utf8mb4' */" in out
    assert out.startswith(b"SET @KEY_m = @@SESSION.sql_mode, @KEY_c = @@SESSION.character_set_client;\n")


@pytest.mark.parametrize("stream", [
    b"DELIMITER $$\nSELECT 1; USE src $$\n",  # the server runs each `;`-separated statement the client sends
    b"/*!99999 garbage */ USE src;\n",  # a version comment the server skips: USE starts the statement
    b"USE /* c */ src;\n",
    b"SELECT 1;\\\nUSE src;\n",  # a backslash before the newline is dropped by the client
    b"SELECT 'a\\\x00'; ';\n';USE src;\n",  # backslash-NUL in a string: the client drops the rest of the line
])
def test_a_statement_switching_database_is_found_wherever_the_server_runs_one(stream: bytes) -> None:
    out = _run(stream)
    assert b"src" not in out.split(b"\n", 1)[1]
    assert out.count(b"`dst`") == 1


def test_a_second_database_is_refused() -> None:
    with pytest.raises(TransferError, match=r"more than one database \(a1, b2\)"):
        _run(b"USE a1;\nSELECT 1;\nCREATE DATABASE b2;\n")


@pytest.mark.parametrize(("stream", "reason"), [
    (b"SET sql_mode='ANSI_QUOTES';\n", "ANSI_QUOTES"),
    (b"/*!40101 SET SQL_MODE='NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES' */;\n", "NO_BACKSLASH_ESCAPES"),
    (b"SET @@session.sql_mode = 'ansi';\n", "changes how strings are read"),
    (b"SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES');\n", "expression"),
    (b"SET @m = 'ANSI_QUOTES';\nSET sql_mode = @m;\n", "whose value the restore does not know"),
    (b"SET `sql_mode` = 4;\n", "sql_mode to '4'"),
    (b"SET NAMES gbk;\n", "character set to 'gbk'"),
    (b"/*!40101 SET character_set_client = sjis */;\n", "character set to 'sjis'"),
    (b"SET STATEMENT sql_mode='' FOR DROP DATABASE src;\n", "SET STATEMENT"),
    (b"BEGIN NOT ATOMIC SET sql_mode = 'ANSI_QUOTES'; END;\n", "sets sql_mode outside a SET statement"),
    (b"DELIMITER ;;\nCREATE PROCEDURE p() BEGIN IF 1 THEN SET sql_mode='ANSI_QUOTES'; END IF; END;;\n",
     "sets sql_mode outside"),
    (b"/*!40101 */\nDELIMITER $$\nSELECT 1 $$\n", "changes DELIMITER other than on a line of its own"),
    (b"CREATE PROCEDURE p() IF 1 THEN SET NAMES big5; END IF;\n", "character set"),
    (b"PREPARE s FROM 'USE src';\n", "PREPARE"),
    (b"SELECT 1 \\C gbk;\n", "\\\\C"),
    (b"/*!99999 ' */ USE src; -- '\n", "inside a string within an executable comment"),
    (b"SELECT 1 --\x01 '\n; USE src; '\n", "control character"),
    (b"/*!40101 /*!40101 x */ y */;\n", "nests executable comments"),
    (b"SELECT 'a\\\n', 5;\nUSE src;\n", "ends a line with a backslash inside a string"),
    (b"SELECT 1;\n\x00USE src;\n", "NUL byte outside a string"),
])
def test_what_changes_how_statements_are_lexed_is_refused_with_one_line(stream: bytes, reason: str) -> None:
    with pytest.raises(TransferError, match=re.escape(reason) if "\\" not in reason else reason) as err:
        _run(stream)
    assert "\n" not in str(err.value) and str(err.value).startswith("restore into database dst: ")


def test_modes_mysqldump_writes_keep_working() -> None:
    out = _run(b"SET SQL_MODE='NO_AUTO_VALUE_ON_ZERO';\nSET sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE';\n"
               b"SET @x = @@sql_mode;\nSET sql_mode = @x;\nSET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;\n")
    assert out.endswith(b"SET sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE';\nSET NAMES utf8mb4 COLLATE "
                        b"utf8mb4_unicode_ci;\n")
