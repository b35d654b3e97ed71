"""How a mysqldump is cut for a parallel restore: the header goes to every connection, each table's section
(structure, data, triggers) is one unit without its LOCK TABLES lines, the trailer is serial, and a dump without
table markers or with several databases goes serial with a note, whatever the feed size."""

from __future__ import annotations

from providers.databases.mysql_parallel import MySQLDumpSplitter
from providers.databases.pg_parallel import DataBegin, DataBytes, DataEnd, Event, Every, Serial

HEADER = b"""/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19
/*!40101 SET NAMES utf8mb4 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;

"""


def _section(t: str) -> bytes:
    return (f"--\n-- Table structure for table `{t}`\n--\n\nDROP TABLE IF EXISTS `{t}`;\nCREATE TABLE `{t}` (id int);\n\n"
            f"--\n-- Dumping data for table `{t}`\n--\n\nLOCK TABLES `{t}` WRITE;\nINSERT INTO `{t}` VALUES\n"
            + "".join(f"({i}),\n" for i in range(50)) + "(-1);\nUNLOCK TABLES;\n\n").encode()


TRAILER = b"""--
-- Dumping routines for database 'd'
--
DELIMITER ;;
CREATE PROCEDURE p() SELECT 1 ;;
DELIMITER ;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;

-- Dump completed
"""
DUMP = HEADER + _section("a") + _section("b") + TRAILER


def _split(dump: bytes, feed: int) -> tuple[list[Event], str]:
    s = MySQLDumpSplitter()
    out: list[Event] = []
    for i in range(0, len(dump), feed):
        out += s.feed(dump[i:i + feed])
    return out + s.flush(), s.note


def _units(events: list[Event]) -> list[tuple[str, bytes]]:
    """(kind, bytes) in order, a Data unit joined from its DataBegin to its DataEnd."""
    units: list[tuple[str, bytes]] = []
    for ev in events:
        if isinstance(ev, DataBegin):
            units.append(("data " + ev.table, b""))
        elif isinstance(ev, DataBytes):
            units[-1] = (units[-1][0], units[-1][1] + bytes(ev.data))
        elif isinstance(ev, Every | Serial):
            kind = "every" if isinstance(ev, Every) else "serial"
            if units and units[-1][0] == kind:
                units[-1] = (kind, units[-1][1] + bytes(ev.data))
            else:
                units.append((kind, bytes(ev.data)))
        elif isinstance(ev, DataEnd):
            units.append(("end", b""))
    return [u for u in units if u[0] != "end"]


def test_header_sections_and_trailer_whatever_the_feed_size() -> None:
    unlocked = DUMP.replace(b"LOCK TABLES `a` WRITE;\n", b"").replace(b"LOCK TABLES `b` WRITE;\n", b"")
    for feed in (1, 2, 5, 64, 1000, len(DUMP)):
        events, note = _split(DUMP, feed)
        units = _units(events)
        assert [k for k, _ in units] == ["every", "data a", "data b", "serial"], feed
        assert b"".join(u for _, u in units) == unlocked.replace(b"UNLOCK TABLES;\n", b"")
        assert units[0][1] == HEADER + b"--\n"  # cut at the marker line
        assert units[1][1].startswith(b"-- Table structure for table `a`\n") and b"INSERT INTO `a`" in units[1][1]
        assert units[3][1] == TRAILER[3:] and not note


def test_a_compact_dump_is_all_serial_with_a_note() -> None:
    compact = DUMP.replace(b"-- ", b"#")
    events, note = _split(compact, 100)
    assert {type(ev) for ev in events} == {Serial}
    assert b"".join(bytes(ev.data) for ev in events if isinstance(ev, Serial)) == compact
    assert "no table sections" in note


def test_a_second_database_makes_the_rest_serial() -> None:
    dump = (HEADER + b"-- Current Database: `d`\nUSE `d`;\n" + _section("a")
            + b"-- Current Database: `e`\nUSE `e`;\n" + _section("b") + TRAILER)
    events, note = _split(dump, 7)
    units = _units(events)
    assert [k for k, _ in units] == ["every", "data a", "serial"]
    assert units[0][1].endswith(b"USE `d`;\n--\n") and b"LOCK TABLES `b` WRITE;" in units[2][1]
    assert note == "the dump holds several databases: the rest went over one connection"


def test_a_header_that_drops_the_database_is_not_replayed() -> None:
    dump = HEADER + b"/*!40000 DROP DATABASE IF EXISTS `d`*/;\nCREATE DATABASE `d`;\nUSE `d`;\n" + _section("a")
    for feed in (1, 64, len(dump)):
        events, note = _split(dump, feed)
        assert {type(ev) for ev in events} == {Serial}
        assert b"".join(bytes(ev.data) for ev in events if isinstance(ev, Serial)) == dump
        assert "drops its database" in note
