"""Cuts a plain `pg_dump` stream into units a parallel restore can schedule (pure: bytes in, events out).

Entries are found by pg_dump's `-- Name: ...; Type: X;` comments. Before the first data entry everything is
`Serial` (streamed); `TABLE DATA`/`SEQUENCE SET` entries are `Data` units (a COPY block is cut at row ends into
pieces of about `piece_bytes`, each its own `COPY ... FROM stdin;`); later entries are whole `Post` units
classed "index" (CREATE INDEX, PRIMARY KEY/UNIQUE/CHECK/EXCLUDE), "fk" or "serial". Each unit carries the
session settings (`SET ...`) in force where it starts. A psql meta-command other than `\\restrict`/`\\unrestrict`
lines (e.g. `\\connect`) goes to `check_meta`, which may refuse it; else the rest of the stream is `Serial`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

PIECE_BYTES = 4 << 20  # a COPY piece: small beside a worker's queue, so the reader rarely waits on one worker
POST_ENTRY_LIMIT = 1 << 20  # a post-data entry larger than this is streamed serially, never held

_HEADER = re.compile(rb"^-- (?:Data for )?Name: .*?; Type: (?P<type>[^;\n]+);")
_COPY = re.compile(rb"^COPY (?P<table>.+?) (?:\(.*\) )?FROM stdin;\r?\n$")
_SETTING = re.compile(rb"^(?:SET (?P<var>\S+|SESSION AUTHORIZATION)\b|RESET (?P<reset>SESSION AUTHORIZATION)"
                      rb"|SELECT pg_catalog\.set_config\('(?P<cfg>[a-z_]+)')")
_RESTRICT = re.compile(rb"^\\restrict (?P<key>[A-Za-z0-9]+)\r?\n$")
_IDENT = rb'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NAME = rb"(?:" + _IDENT + rb"\.)?" + _IDENT
_INDEX = re.compile(rb"CREATE (?:UNIQUE )?INDEX " + _IDENT + rb" ON (?:ONLY )?(?P<t>" + _NAME + rb") USING [^;]*;\s*$",
                    re.S)
_CONSTRAINT = re.compile(rb"ALTER TABLE (?:ONLY )?(?P<t>" + _NAME + rb")\s+ADD CONSTRAINT " + _IDENT
                         + rb" (?:PRIMARY KEY|UNIQUE|CHECK|EXCLUDE)\b[^;]*;\s*$", re.S)
_FOREIGN = re.compile(rb"ALTER TABLE (?:ONLY )?(?P<t>" + _NAME + rb")\s+ADD CONSTRAINT " + _IDENT
                      + rb" FOREIGN KEY \([^;]*?\) REFERENCES (?P<r>" + _NAME + rb")\([^;]*;\s*$", re.S)
DATA_TYPES = (b"TABLE DATA", b"SEQUENCE SET")


@dataclass(frozen=True)
class Serial:
    """Bytes to run on the first connection after everything before them has finished."""

    data: bytes | memoryview


@dataclass(frozen=True)
class Every:
    """Bytes every connection runs first (a MySQL dump's header: its session settings)."""

    data: bytes


@dataclass(frozen=True)
class DataBegin:
    """A data unit starts: run `prefix` and the `DataBytes` that follow on one connection, beside other data."""

    prefix: bytes
    table: str = ""


@dataclass(frozen=True)
class DataBytes:
    data: bytes | memoryview  # COPY rows: a view of the buffer fed (the writer sends it without a copy)


@dataclass(frozen=True)
class DataEnd:
    pass


@dataclass(frozen=True)
class Post:
    """A whole post-data entry; "index" and "fk" entries may run beside others of their class whose `locks`
    (tables) they do not share; "serial" ones run alone, in order."""

    text: bytes
    cls: str
    locks: frozenset[str] = frozenset()


Event = Serial | Every | DataBegin | DataBytes | DataEnd | Post


@dataclass
class PlainDumpSplitter:
    """Feed it the dump's bytes; it returns events in stream order. Memory: one post entry, one partial line."""

    piece_bytes: int = PIECE_BYTES
    check_meta: Callable[[bytes], None] | None = None  # told of each meta-command line; raises to refuse it
    table_bytes: dict[str, int] = field(default_factory=dict)  # COPY bytes per table (largest indexes first)
    note: str = ""  # (the writer's interface: a plain dump's serial parts are in order, not a fallback)
    _held: bytes = b""
    _settings: dict[bytes, bytes] = field(default_factory=dict)
    _kind: str = "serial"  # the current entry: serial | data | post
    _started_data: bool = False
    _serial_only: bool = False
    _restrict_keys: set[bytes] = field(default_factory=set)
    _copy_line: bytes = b""  # inside a COPY block: its COPY line
    _copy_table: str = ""
    _piece: int = 0
    _post: list[bytes] = field(default_factory=list)
    _post_size: int = 0
    _post_type: bytes = b""
    _entry_head: bool = True  # settings are read only where pg_dump writes them: before an entry's statements

    def feed(self, data: bytes) -> list[Event]:
        """Rows pass as views of `data` (no copy); only a partial line is held for the next feed."""
        out: list[Event] = []
        start = 0
        if self._held:  # the held partial line is completed by the first line of `data`, copied apart
            nl = data.find(b"\n")
            if nl < 0:
                self._held += data
                return out
            head, self._held, start = self._held + data[:nl + 1], b"", nl + 1
            if (pos := self._scan(head, 0, out)) < len(head):
                data, start = head[pos:] + data[start:], 0  # cannot happen with whole lines; kept correct
        pos = self._scan(data, start, out)
        self._held = data[pos:]
        return out

    def _scan(self, buf: bytes, pos: int, out: list[Event]) -> int:
        """Consume whole lines (and COPY rows) of `buf` from `pos`; the position of what is left."""
        view = memoryview(buf)
        while pos < len(buf):
            if self._copy_line:
                moved = self._copy_rows(buf, view, pos, out)
                if moved == pos:
                    break  # no whole row yet
                pos = moved
                continue
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            self._line(buf[pos:end + 1], out)
            pos = end + 1
        return pos

    def flush(self) -> list[Event]:
        out: list[Event] = []
        rest, self._held = self._held, b""
        if self._copy_line:
            out.append(DataBytes(rest))  # an unterminated COPY: the client reports it
            rest = b""
            self._copy_line = b""
        elif rest:
            self._line(rest, out)
        self._end_entry(out)
        return out

    # --- COPY blocks ------------------------------------------------------------------------------------

    def _copy_rows(self, buf: bytes, view: memoryview, pos: int, out: list[Event]) -> int:
        """Pass rows through up to the `\\.` line; cut a new piece at a row end past `piece_bytes`."""
        if buf.startswith(b"\\.\n", pos):  # pg_dump ends every line with \n alone
            out.append(DataBytes(b"\\.\n"))
            self._copy_line = b""
            return pos + 3
        slash = buf.find(b"\\", pos)  # memchr-fast; most rows hold no backslash, so most buffers end here
        found = -1 if slash < 0 else buf.find(b"\n\\.\n", max(pos, slash - 1))
        last = found + 1 if found >= 0 else buf.rfind(b"\n", pos) + 1
        if last <= pos:
            return pos  # no whole row yet
        budget = max(1, self.piece_bytes - self._piece)
        if last - pos > budget:  # this piece ends within the buffer: at the last row end in budget (or one row)
            cut = buf.rfind(b"\n", pos, pos + budget) + 1
            last = cut if cut > pos else buf.index(b"\n", pos) + 1
        rows = view[pos:last]
        out.append(DataBytes(rows))
        self._piece += len(rows)
        self.table_bytes[self._copy_table] = self.table_bytes.get(self._copy_table, 0) + len(rows)
        if self._piece >= self.piece_bytes and last != found + 1:  # more rows follow: they start a new piece
            out += [DataBytes(b"\\.\n"), DataEnd(), DataBegin(self._prefix(), self._copy_table),
                    DataBytes(self._copy_line)]
            self._piece = 0
        return last

    # --- lines outside COPY -----------------------------------------------------------------------------

    def _line(self, line: bytes, out: list[Event]) -> None:
        header = _HEADER.match(line)
        if header and not self._serial_only:
            self._end_entry(out)
            self._begin_entry(header.group("type").strip(), out)
        elif line.startswith(b"\\") and self._meta(line):
            return
        self._emit(line, out)
        if self._kind == "data" and not self._serial_only:
            copy = _COPY.match(line)
            if copy:
                self._copy_line, self._copy_table, self._piece = line, copy.group("table").decode(errors="replace"), 0
        if not self._entry_head or header or not line.strip() or line.startswith(b"--"):
            return
        setting = _SETTING.match(line)
        if setting and line.rstrip().endswith(b";"):
            var = setting.group("var") or setting.group("reset") or setting.group("cfg") or b""
            self._settings[var.lower()] = line
        else:
            self._entry_head = False

    def _meta(self, line: bytes) -> bool:
        """True when the line is dropped (pg_dump's restrict pair: each connection gets its own)."""
        restrict = _RESTRICT.match(line)
        if restrict and not self._started_data:  # pg_dump's, and one a stream filter may have put first
            self._restrict_keys.add(restrict.group("key"))
            return True
        if line.startswith(b"\\unrestrict ") and line.split()[-1] in self._restrict_keys:
            return True
        if self.check_meta is not None:
            self.check_meta(line)  # may refuse the stream
        self._serial_only = True  # _emit ends the current entry and streams the rest serially
        return False

    def _begin_entry(self, kind: bytes, out: list[Event]) -> None:
        self._entry_head = True
        if kind in DATA_TYPES:
            self._kind, self._started_data = "data", True
            out.append(DataBegin(self._prefix()))
        elif self._started_data:
            self._kind, self._post_type, self._post, self._post_size = "post", kind, [self._prefix()], 0
        else:
            self._kind = "serial"
            out.append(Serial(self._prefix()))

    def _emit(self, line: bytes, out: list[Event]) -> None:
        if self._serial_only and self._kind != "serial":
            self._end_entry(out)
            self._kind = "serial"
        if self._kind == "data":
            out.append(DataBytes(line))
        elif self._kind == "post":
            self._post.append(line)
            self._post_size += len(line)
            if self._post_size > POST_ENTRY_LIMIT:
                out.append(Serial(b"".join(self._post)))
                self._post, self._kind = [], "serial"
        else:
            out.append(Serial(line))

    def _end_entry(self, out: list[Event]) -> None:
        if self._kind == "data":
            out.append(DataEnd())
        elif self._kind == "post" and self._post:
            out.append(classify(b"".join(self._post), self._post_type))
            self._post = []
        self._kind = "serial"

    def _prefix(self) -> bytes:
        return b"".join(self._settings.values())


def classify(text: bytes, kind: bytes) -> Post:
    """A post-data entry's class and the tables it locks; "serial" unless its one statement is recognised."""
    body = b"".join(ln for ln in text.splitlines(keepends=True)
                    if ln.strip() and not ln.startswith(b"--") and not _SETTING.match(ln)).strip()
    if kind == b"INDEX" and (m := _INDEX.fullmatch(body)):
        return Post(text, "index", frozenset({_table(m.group("t"))}))
    if kind == b"CONSTRAINT" and (m := _CONSTRAINT.fullmatch(body)):
        return Post(text, "index", frozenset({_table(m.group("t"))}))
    if kind == b"FK CONSTRAINT" and (m := _FOREIGN.fullmatch(body)):
        return Post(text, "fk", frozenset({_table(m.group("t")), _table(m.group("r"))}))
    return Post(text, "serial")


def _table(name: bytes) -> str:
    return name.decode(errors="replace")
