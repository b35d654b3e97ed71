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


def _line_start_backslash(data: bytes, pos: int) -> int:
    """The first backslash at or after `pos` (a line start) that starts a line, or -1."""
    slash = data.find(b"\\", pos)  # memchr-fast; a 2-byte find from there only when it is mid-line
    if slash < 0 or slash == pos or data[slash - 1] == 10:
        return slash
    found = data.find(b"\n\\", slash)
    return found + 1 if found >= 0 else -1


class PsqlConfine:
    """Runs the stream through psql in restricted mode (`\\restrict` with a random key: psql then refuses
    every meta-command, `\\!`, `\\o`, `\\copy`, `\\setenv` included), drops the dump's own `\\restrict` and
    `\\unrestrict` lines, and lets `\\connect <db>` through only when the target is the whole server."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._key = secrets.token_hex(24).encode()
        self._held = b""
        self._started = False
        self._mid_line = False  # the next byte continues an ordinary line (it passes through)

    def feed(self, data: bytes) -> bytes:
        """Ordinary lines pass untouched (a chunk without a meta-command line is returned as it is); only a line
        starting with a backslash is looked at, held whole first."""
        out: list[bytes] = []
        if not self._started:
            self._started = True
            out.append(b"\\restrict " + self._key + b"\n")
        data, self._held = self._held + data, b""
        pos = 0
        if self._mid_line:
            pos = data.find(b"\n") + 1
            if not pos:
                return b"".join([*out, data])
        emitted = 0
        while (meta := _line_start_backslash(data, pos)) >= 0:
            end = data.find(b"\n", meta) + 1
            out.append(data[emitted:meta])
            if not end:  # the last line is a meta-command line begun: judged when whole
                if len(data) - meta > MAX_LINE:
                    raise TransferError(f"psql restore: a meta-command line longer than {MAX_LINE} bytes")
                self._held = data[meta:]
                self._mid_line = False
                return b"".join(out)
            out.append(self._line(data[meta:end]))
            emitted = pos = end
        out.append(data[emitted:])
        self._mid_line = bool(data) and not data.endswith(b"\n")
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._held = self._held, b""
        return self._line(rest) if rest else b""

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
