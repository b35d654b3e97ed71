"""How a psql restore stream is kept to its target database: `PsqlConfine` runs psql restricted (no
meta-command but the `\\connect` it allows); `Chain` joins filters. Memory is bounded: one line of `MAX_LINE`
bytes at most. The MySQL/MariaDB filter is `providers.databases.mysql_confine`.
"""

from __future__ import annotations

import re
import secrets

from providers.databases.base import StreamFilter
from stashplan.errors import TransferError

MAX_LINE = 1 << 20  # a psql meta-command line longer than this is refused (pg_dump writes short ones)


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
