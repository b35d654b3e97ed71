"""How a restore stream is kept to its target database: `MySQLConfine` rewrites `USE`/`CREATE`/`DROP`/`ALTER
DATABASE` of the dump's one database to the target (another database refuses the restore), `PsqlConfine`
runs psql restricted (no meta-command but the `\\connect` it allows) and `Chain` joins filters. Memory is
bounded: neither holds more than a short statement head or one line of `MAX_LINE` bytes.
"""

from __future__ import annotations

import re
import secrets

from providers.databases.base import StreamFilter
from stashplan.errors import TransferError

MAX_LINE = 1 << 20  # a psql meta-command line longer than this is refused (pg_dump writes short ones)
_HEAD = 1024  # bytes of a MySQL statement looked at to see whether it switches database


class Chain:
    """Filters applied one after another."""

    def __init__(self, *filters: StreamFilter) -> None:
        self._filters = filters

    def feed(self, data: bytes) -> bytes:
        for f in self._filters:
            data = f.feed(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for f in self._filters:
            data = f.feed(data) + f.flush()
        return data


# --- MySQL / MariaDB -------------------------------------------------------------------------------------

_DB_STATEMENT = re.compile(
    rb"(?i)(?:/\*M?!\d*\s*)?(?P<verb>USE|(?:CREATE|DROP|ALTER)\s+(?:DATABASE|SCHEMA))\b"
    rb"(?P<mid>(?:\s+|/\*M?!?\d*\s*(?:IF\s+(?:NOT\s+)?EXISTS)?\s*\*/|IF\s+(?:NOT\s+)?EXISTS\b)*)"
    rb"(?P<name>`(?:[^`]|``)*`|[A-Za-z0-9_$\x80-\xff]+)?")
_NOT_A_NAME = {b"CHARACTER", b"CHARSET", b"DEFAULT", b"COLLATE", b"COMMENT", b"UPGRADE", b"READ"}
_DELIMITER = re.compile(rb"(?i)[ \t]*delimiter[ \t]+(\S+)")
_SQL_MODE = re.compile(rb"(?i)NO_BACKSLASH_ESCAPES|ANSI_QUOTES|\bANSI\b|\bORACLE\b|\bMSSQL\b|\bDB2\b|\bMAXDB\b"
                       rb"|\bPOSTGRESQL\b|\bPREPARE\b|\bEXECUTE\b")


_IN_QUOTE = {q: re.compile(rb"[\\\n" + bytes([q]) + rb"]") for q in b"'\"`"}
_PLAIN_RUN = re.compile(rb"[A-Za-z0-9_$(),.=+@:<>!%&|^~?\[\]{}\x80-\xff]+")
_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$(),.=+@:<>!%&|^~?[]{}"
                   + bytes(range(0x80, 0x100)))


class MySQLConfine:
    """Keeps a mysql/mariadb restore (run with `--binary-mode`, so no client command but DELIMITER runs) in
    `target`: it lexes the stream as the client does (quotes with backslash escapes, comments, executable
    comments, DELIMITER) and rewrites each statement that names the dump's database to name the target."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._source = ""
        self._buf = b""
        self._quote = 0  # the open quote character, 0 when none
        self._comment = False  # inside /* */ (not an executable comment)
        self._line_comment = False
        self._pending = False  # a statement has begun since the last delimiter
        self._line_start = True
        self._delimiter = b";"

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        return self._scan(final=False)

    def flush(self) -> bytes:
        return self._scan(final=True)

    def _scan(self, *, final: bool) -> bytes:
        buf, out, i, n = self._buf, bytearray(), 0, len(self._buf)
        while i < n:
            c = buf[i]
            if self._line_comment:
                j = buf.find(b"\n", i)
                i = n if j < 0 else j
                self._line_comment = j < 0
                continue
            if c == 0x0A:
                self._line_start = True
                i += 1
                continue
            if self._comment:
                j = buf.find(b"*/", i)
                if j < 0:
                    i = max(i, n - 1) if not final else n
                    break
                self._comment, i = False, j + 2
                continue
            if self._quote:
                if c == 0x5C and self._quote != 0x60:  # backslash escapes the next byte in '...' and "..."
                    if i + 1 >= n and not final:
                        break
                    i += 2
                    continue
                if c == self._quote:
                    self._quote = 0
                    i += 1
                    continue
                m = _IN_QUOTE[self._quote].search(buf, i)  # jump to the next quote, backslash or newline
                i = n if m is None else max(m.start(), i + 1)
                continue
            if not final and n - i < _HEAD:
                break  # too little to decide what starts here (a statement head, a split token): wait for more
            if self._line_start and not self._pending:
                m = _DELIMITER.match(buf, i)
                if m:
                    self._delimiter = m.group(1)
                    i, self._line_start = m.end(), False
                    continue
            self._line_start = False
            if buf.startswith(self._delimiter, i):
                self._pending, i = False, i + len(self._delimiter)
                continue
            if c in b" \t\r":
                i += 1
                continue
            if buf.startswith(b"/*", i) and not buf.startswith((b"/*!", b"/*M!"), i):
                self._comment, i = True, i + 2
                continue
            if c == 0x23 or (buf.startswith(b"--", i) and buf[i + 2:i + 3] in (b" ", b"\t", b"\n", b"\r", b"")):
                self._line_comment = True
                continue
            if not self._pending:
                self._pending = True
                rewritten = self._statement(buf, i)
                if rewritten is not None:
                    head, end = rewritten
                    buf = buf[:i] + head + buf[end:]
                    n = len(buf)
                    i += len(head)
                    continue
            if c in b"'\"`":
                self._quote = c
            elif c in _PLAIN and self._pending and self._delimiter[0] not in _PLAIN:
                m = _PLAIN_RUN.match(buf, i)  # skip a run of ordinary bytes, checked as a whole
                end = m.end() if m else i + 1
                if _SQL_MODE.search(buf, i, end) is None:  # the held-back tail is searched again next time
                    i = end if final or end <= n - _HEAD else max(i + 1, n - _HEAD)
                    continue
            if (mode := _SQL_MODE.match(buf, i)) is not None:
                raise TransferError(
                    f"restore into database {self.target}: the dump changes how statements are parsed or builds "
                    f"them at run time ({mode.group(0).decode()}); restore it into an AppBinding that names no "
                    "database")
            i += 1
        out += buf[:i]
        self._buf = buf[i:]
        return bytes(out)

    def _statement(self, buf: bytes, i: int) -> tuple[bytes, int] | None:
        """A database statement starting at `i` rewritten to the target, with where it ended; None otherwise."""
        m = _DB_STATEMENT.match(buf, i)
        if not m:
            return None
        raw = m.group("name")
        if raw is None or (not raw.startswith(b"`") and raw.upper() in _NOT_A_NAME):
            return None
        name = (raw[1:-1].replace(b"``", b"`") if raw.startswith(b"`") else raw).decode(errors="replace")
        if name != self.target:
            if self._source and name != self._source:
                raise TransferError(
                    f"restore into database {self.target}: the dump holds more than one database ({self._source}, "
                    f"{name}); restore it into an AppBinding that names no database, or back up one database")
            self._source = name
        quoted = b"`" + self.target.encode().replace(b"`", b"``") + b"`"
        return buf[i:m.start("name")] + quoted, m.end("name")


# --- PostgreSQL ----------------------------------------------------------------------------------------

_META = re.compile(rb"\\([A-Za-z!?]+|!)")
_CONNECT = re.compile(rb"\\(?:c|connect)[ \t]+(?:-reuse-previous=on[ \t]+\"dbname='([^'\"\\]+)'\"|"
                      rb"([A-Za-z_][A-Za-z0-9_$]*))[ \t]*\r?\n?$")
# Single letters COPY data may start a line with (escapes such as \N, \t); psql refuses them anyway.
_COPY_ESCAPES = {b"N", b"b", b"f", b"n", b"r", b"t", b"v", b"x"}


class PsqlConfine:
    """Runs the stream through psql in restricted mode (`\\restrict` with a random key: psql then refuses
    every meta-command, `\\!`, `\\o`, `\\copy`, `\\setenv` included), drops the dump's own `\\restrict` and
    `\\unrestrict` lines, and lets `\\connect <db>` through only when the target is the whole server."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._key = secrets.token_hex(24).encode()
        self._held = b""
        self._started = False
        self._long = False  # passing the rest of a long ordinary line through

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        if not self._started:
            self._started = True
            out += b"\\restrict " + self._key + b"\n"
        data = self._held + data
        self._held = b""
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            if end < 0:
                rest = data[start:]
                if self._long or (len(rest) > MAX_LINE and not rest.startswith(b"\\")):
                    self._long = True
                    out += rest
                elif len(rest) > MAX_LINE:
                    raise TransferError(f"psql restore: a meta-command line longer than {MAX_LINE} bytes")
                else:
                    self._held = rest
                break
            line = data[start:end + 1]
            out += line if self._long else self._line(line)
            self._long = False
            start = end + 1
        return bytes(out)

    def flush(self) -> bytes:
        rest, self._held = self._held, b""
        return b"" if self._long or not rest else self._line(rest)

    def _line(self, line: bytes) -> bytes:
        if not line.startswith(b"\\"):
            return line
        m = _META.match(line)
        word = m.group(1) if m else b""
        if word in (b"restrict", b"unrestrict"):
            return b""  # the dump's own guard: ours is already on
        if word in (b"c", b"connect"):
            c = _CONNECT.match(line)
            if self.target:
                name = (c.group(1) or c.group(2)).decode() if c else line.decode(errors="replace").strip()
                raise TransferError(
                    f"restore into database {self.target}: the dump switches database (\\connect {name}); restore "
                    "it into an AppBinding that names no database, or back up with pg_dump without --create")
            if c is None:
                raise TransferError("psql restore: the dump's \\connect line names more than a database: "
                                    f"{line.decode(errors='replace').strip()[:200]}")
            return b"\\unrestrict " + self._key + b"\n" + line.rstrip(b"\r\n") + b"\n\\restrict " + self._key + b"\n"
        if word and word[:1] not in _COPY_ESCAPES:  # `\N`, `\tab...` may be COPY data; psql refuses the rest
            raise TransferError(f"psql restore: the dump runs the meta-command \\{word.decode(errors='replace')}; "
                                "a restore runs SQL only (its stream is refused)")
        return line
