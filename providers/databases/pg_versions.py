r"""PostgreSQL client against server versions: the settings a newer pg_dump writes that an older server refuses
(pg_dump 17's `SET transaction_timeout = 0;` on PostgreSQL 15), made conditional on the restore stream, and
pg_dump's refusal of a server newer than itself said in one line naming both versions."""

from __future__ import annotations

import re

from providers.databases.copy_data import rows_only

# setting -> the first server version (server_version_num) that knows it; pg_dump writes `SET <setting> = <n>;`
# in each database's preamble, from the version that knows it on, whatever the server it dumped.
NEWER_SETTINGS: dict[bytes, int] = {b"transaction_timeout": 170000}
_SET = re.compile(rb"^SET (" + b"|".join(NEWER_SETTINGS) + rb") = (\d+);\r?$", re.M)
_MISMATCH = re.compile(r"server version: (?P<server>\d+(?:\.\d+)*)[^;|]*; (?P<tool>pg_dump(?:all)?) version: "
                       r"(?P<client>\d+(?:\.\d+)*)")


def _guarded(m: re.Match[bytes]) -> bytes:
    setting, value = m[1], m[2]
    return (b"SELECT pg_catalog.set_config('" + setting + b"', '" + value + b"', false) WHERE "
            b"pg_catalog.current_setting('server_version_num')::integer >= "
            + str(NEWER_SETTINGS[setting]).encode() + b";")


class NewerSettingsFilter:
    r"""Rewrites each `SET <setting> = <n>;` line of NEWER_SETTINGS outside COPY data into a `set_config` that runs
    only on a server that knows the setting, so a dump restores into the server version it came from (psql
    stops at the first error). COPY data passes untouched: its rows end at a `\.` line."""

    def __init__(self) -> None:
        self._held = b""
        self._in_copy = False
        self._line_start = True  # the next byte starts a line (a chunk passed whole may end inside a row)

    def feed(self, data: bytes) -> bytes:
        if self._in_copy and not self._held and rows_only(data, self._line_start):
            self._line_start = data.endswith(b"\n")
            return data  # rows pass as they are: no copy of the bulk of a dump
        data = self._held + data
        cut = data.rfind(b"\n") + 1
        self._held = data[cut:]
        out = self._lines(data[:cut])
        self._line_start = self._line_start or cut > 0
        if self._in_copy and self._held and not (self._line_start and self._held.startswith(b"\\")):
            out, self._held, self._line_start = out + self._held, b"", False  # a row's start: no end of the block
        return out

    def flush(self) -> bytes:
        rest, self._held = self._held, b""
        return self._lines(rest)

    def _lines(self, body: bytes) -> bytes:
        """Whole lines (the stream's last may lack its newline): SQL between COPY blocks is rewritten."""
        out: list[bytes] = []
        pos, size = 0, len(body)
        while pos < size:
            if self._in_copy:
                end = _line_at(body, b"\\.\n", pos)
                if end == 0 and not self._line_start:  # the body goes on a row a whole chunk began
                    end = _line_at(body, b"\\.\n", 1)
                stop = size if end < 0 else end + 3
                out.append(body[pos:stop])
                self._in_copy = end < 0
                pos = stop
                continue
            start = _copy_start(body, pos)
            stop = size if start < 0 else body.index(b"\n", start) + 1
            sql = body[pos:stop]
            out.append(_SET.sub(_guarded, sql) if _has_setting(sql) else sql)
            self._in_copy = start >= 0
            pos = stop
        return b"".join(out)


def _has_setting(sql: bytes) -> bool:
    return any(b"SET " + name in sql for name in NEWER_SETTINGS)


def _line_at(body: bytes, needle: bytes, pos: int) -> int:
    """The first index >= pos where `needle` starts a line, else -1."""
    i = body.find(needle, pos)
    while i > 0 and body[i - 1] != 10:
        i = body.find(needle, i + 1)
    return i


def _copy_start(body: bytes, pos: int) -> int:
    """The start of the next pg_dump `COPY ... FROM stdin;` line at or after pos, else -1."""
    i = body.find(b" FROM stdin;", pos)
    while i >= 0:
        line = body.rfind(b"\n", 0, i) + 1
        if line >= pos and body.startswith(b"COPY ", line) and body[i + 12:i + 13] in (b"\n", b"\r"):
            return line
        i = body.find(b" FROM stdin;", i + 1)
    return -1


def version_mismatch(tail: str) -> str | None:
    """pg_dump's (or pg_dumpall's) refusal of a newer server, from its stderr, as one line naming both versions."""
    m = _MISMATCH.search(tail)
    if m is None or "version mismatch" not in tail:
        return None
    tool, client, server = m["tool"], m["client"], m["server"]
    major = server.split(".")[0]
    return (f"{tool} {client} cannot dump PostgreSQL {server}: {tool} dumps servers up to its own major version "
            f"({client.split('.')[0]}); run a {tool} of {major} or newer (the stashplan image carries 17)")
