"""The `--one-database` restore filter keeps what runs while its database is current, whole client batches at a
time (the same output however the stream is cut), SET statements always, and drops the other databases' USE,
CREATE/DROP DATABASE, triggers and routines."""

from __future__ import annotations

import re

import pytest

from providers.databases.mysql_one_database import OneDatabase
from stashplan.errors import TransferError

DUMP = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40000 DROP DATABASE IF EXISTS `a`*/;
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `a` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;
USE `a`;
CREATE TABLE `t` (`id` int NOT NULL, `v` text);
INSERT INTO `t` VALUES (1,'it\\'s; USE b;\\n'),(2,"USE `b`;");
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.v = 'x;y' */;;
DELIMITER ;
/*!40000 DROP DATABASE IF EXISTS `b`*/;
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `b`;
USE `b`;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `t` (`id` int NOT NULL);
INSERT INTO `t` VALUES (7);
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.id = 8 */;;
CREATE DEFINER=`root`@`%` PROCEDURE `p`()
BEGIN SELECT 1; SET @x = 2; END ;;
DELIMITER ;
USE `a`;
ALTER DATABASE `a` CHARACTER SET utf8mb4;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
"""


def _run(data: bytes, database: str, chunk: int = 65536) -> bytes:
    f = OneDatabase(database)
    out = b"".join(f.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + f.flush()
    return re.sub(rb"stashplan_[0-9a-f]{16}", b"KEY", out)


def _statements(out: bytes) -> list[bytes]:
    return [line for line in out.splitlines() if line.strip() and not line.startswith((b"--", b"/*M!"))]


def test_the_output_does_not_depend_on_how_the_stream_is_cut() -> None:
    whole = _run(DUMP, "a")
    for chunk in (1, 2, 3, 5, 8, 13, 100):
        assert _run(DUMP, "a", chunk) == whole, chunk


def test_keeps_its_database_and_drops_the_others_use_create_and_drop_and_objects() -> None:
    kept = _statements(_run(DUMP, "a"))

    assert b"USE `a`;" in kept and b"USE `b`;" not in kept
    assert b"/*!40000 DROP DATABASE IF EXISTS `a`*/;" in kept
    assert not any(b"`b`" in line and b"DATABASE" in line for line in kept)
    assert b"INSERT INTO `t` VALUES (1,'it\\'s; USE b;\\n'),(2,\"USE `b`;\");" in kept
    assert b"INSERT INTO `t` VALUES (7);" not in kept
    assert sum(b"TRIGGER `tr`" in line for line in kept) == 1 and b"NEW.id = 8" not in b"".join(kept)
    assert not any(b"PROCEDURE" in line or b"SET @x" in line for line in kept)
    assert kept.count(b"DELIMITER ;;") == 2  # the client's delimiter is followed even where nothing is kept
    assert b"/*!40101 SET character_set_client = utf8mb4 */;" in kept  # SET statements run, as the client's
    assert b"ALTER DATABASE `a` CHARACTER SET utf8mb4;" in kept


def test_the_other_database_keeps_only_its_own_statements() -> None:
    kept = _statements(_run(DUMP, "b"))

    assert b"USE `a`;" not in kept and b"USE `b`;" in kept
    assert b"INSERT INTO `t` VALUES (7);" in kept
    assert b"CREATE DEFINER=`root`@`%` PROCEDURE `p`()" in kept
    assert not any(b"x;y" in line or b"it\\'s" in line or b"ALTER DATABASE" in line for line in kept)


def test_a_switch_of_database_inside_one_batch_is_refused() -> None:
    with pytest.raises(TransferError, match="--one-database a: the dump switches to database b inside a batch"):
        _run(b"DELIMITER ;;\nINSERT INTO t VALUES (1); USE b; INSERT INTO t VALUES (2);;\n", "a")
