"""Cuts a mysqldump/mariadb-dump stream by its comment markers for a parallel restore (pure: bytes in, events out).

The header (up to the first `-- Table structure for table`) is `Every` (replayed on each connection); each table
or placeholder view section, structure and data, is a `Data` unit; from the first of events, routines, final view
structures or a second `-- Current Database:` on, everything is `Serial`. A section's `LOCK TABLES`/`UNLOCK
TABLES` lines are dropped (see `MySQLDumpSplitter._line`). No table marker (--compact), a header
over HEADER_LIMIT or one that drops the database (--add-drop-database): all serial, with a `note`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from providers.databases.pg_parallel import DataBegin, DataBytes, DataEnd, Event, Every, Serial

HEADER_LIMIT = 1 << 20  # a header longer than this is no mysqldump header: the restore goes serial
MARKER_LINE_LIMIT = 4096  # a `-` line held across feeds longer than this is no marker

SECTIONS = (b"-- Table structure for table ", b"-- Temporary table structure for view ",
            b"-- Temporary view structure for view ")
TRAILERS = (b"-- Dumping events for database ", b"-- Dumping routines for database ",
            b"-- Final view structure for view ")
DATABASE = b"-- Current Database: "
_LINE_FIRST = (b"-", b"L", b"U")  # the first byte of a marker or lock line
_CANDIDATE = re.compile(rb"\n[-LU]")
_DROPS_DATABASE = re.compile(rb"(?i)\bDROP\s+(?:DATABASE|SCHEMA)\b")  # a header that runs once only
_LOCK = re.compile(rb"LOCK TABLES `(?:[^`]|``)+` WRITE;\n")


@dataclass
class MySQLDumpSplitter:
    """Feed it the dump's bytes; it returns events in stream order. Memory: the header, one held comment line."""

    note: str = ""  # why the restore went serial, if it did
    table_bytes: dict[str, int] = field(default_factory=dict)  # (the writer's interface; no post-data here)
    _mode: str = "header"  # header | section | serial
    _header: list[bytes] = field(default_factory=list)
    _header_size: int = 0
    _held: bytes = b""  # a line starting with `-` cut by the end of a feed
    _line_start: bool = True
    _databases: int = 0

    def feed(self, data: bytes) -> list[Event]:
        out: list[Event] = []
        start = 0
        if self._held:
            nl = data.find(b"\n")
            if nl < 0 and len(self._held) + len(data) <= MARKER_LINE_LIMIT:
                self._held += data
                return out
            end = len(data) if nl < 0 else nl + 1
            line, self._held, start = self._held + data[:end], b"", end
            self._line(line, out)
            self._line_start = line.endswith(b"\n")
        view = memoryview(data)
        pos = i = start
        while True:
            if i == start and self._line_start and data.startswith(_LINE_FIRST, i):
                ls = i
            else:
                found = _CANDIDATE.search(data, max(start, i - 1))
                if found is None:
                    break
                ls = found.start() + 1
            nl = data.find(b"\n", ls)
            if nl < 0:  # a candidate line not ended: held, so that it is read whole
                self._emit(view[pos:ls], out)
                self._held, self._line_start = bytes(view[ls:]), True
                return out
            line = data[ls:nl + 1]
            if self._mode == "section" and (_LOCK.fullmatch(line) or line == b"UNLOCK TABLES;\n"):
                self._emit(view[pos:ls], out)  # the lock lines are dropped (see _line)
                pos = nl + 1
            elif self._marker(line, out, before=view[pos:ls]):
                pos = ls
            i = nl + 1
        self._emit(view[pos:], out)
        self._line_start = data.endswith(b"\n") if len(data) > start else self._line_start
        return out

    def _line(self, line: bytes, out: list[Event]) -> None:
        """A whole line held across feeds. In a section, mysqldump's `LOCK TABLES t WRITE;`/`UNLOCK TABLES;` are
        dropped: MariaDB locks a table's foreign-key children with it, and another connection may have created
        them (a serial restore has not yet): "Table 'child' was not locked with LOCK TABLES"."""
        if self._mode == "section" and (_LOCK.fullmatch(line) or line == b"UNLOCK TABLES;\n"):
            return
        self._marker(line, out)
        self._emit(line, out)

    def flush(self) -> list[Event]:
        out: list[Event] = []
        if self._held:
            line, self._held = self._held, b""
            self._line(line, out)
        if self._mode == "header":
            self._serial(out, "the dump has no table sections (e.g. --compact)")
        elif self._mode == "section":
            out.append(DataEnd())
        return out

    def _marker(self, line: bytes, out: list[Event], before: bytes | memoryview = b"") -> bool:
        """Acts on a marker line (after emitting `before`, what precedes it); False when it is none."""
        kind = ("section" if line.startswith(SECTIONS) else "trailer" if line.startswith(TRAILERS)
                else "database" if line.startswith(DATABASE) else "")
        if not kind or self._mode == "serial":
            return False
        self._emit(before, out)
        if kind == "database":
            self._databases += 1
            if self._databases == 1 and self._mode == "header":
                return True  # `--databases db`: its CREATE DATABASE and USE are header (the filter rewrites them)
            self._end(out)
            self._serial(out, "the dump holds several databases")
        elif kind == "trailer":
            self._end(out)
            self._serial(out, "")
        else:
            if self._mode == "header" and _DROPS_DATABASE.search(b"".join(self._header)):
                self._serial(out, "the dump drops its database (--add-drop-database), which runs once")
                return True
            if self._mode == "header":
                out.append(Every(b"".join(self._header)))
                self._header, self._header_size = [], 0
            self._end(out)
            self._mode = "section"
            name = line[len(next(m for m in SECTIONS if line.startswith(m))):].strip()
            out.append(DataBegin(b"", name.strip(b"`").decode(errors="replace")))
        return True

    def _end(self, out: list[Event]) -> None:
        if self._mode == "section":
            out.append(DataEnd())
            self._mode = "header-done"

    def _serial(self, out: list[Event], note: str) -> None:
        if self._mode == "header":
            out.append(Serial(b"".join(self._header)))
            self._header, self._header_size = [], 0
            self.note = note
        elif note and not self.note:
            self.note = f"{note}: the rest went over one connection"
        self._mode = "serial"

    def _emit(self, data: bytes | memoryview, out: list[Event]) -> None:
        if not len(data):
            return
        if self._mode == "header":
            self._header.append(bytes(data))
            self._header_size += len(data)
            if self._header_size > HEADER_LIMIT:
                self._serial(out, f"no table section in the first {HEADER_LIMIT >> 20} MiB")
        elif self._mode == "section":
            out.append(DataBytes(data))
        else:
            out.append(Serial(data))
