"""The byte patterns of MariaDB/MySQL lexing that the restore filter (`providers.databases.mysql_confine`)
scans with: string bodies as the client and server read them, runs of bytes that need no look, and the
scanner that finds the next byte that does."""

from __future__ import annotations

import re

SPACE = frozenset(b" \t\n\v\f\r")
HEAD = 4096  # bytes looked at after a statement's first word (a database name and what precedes it)
SET_MAX = 64 * 1024  # a SET statement is held until its end; longer ones are refused


def match_end(pattern: re.Pattern[bytes], buf: bytes, pos: int, endpos: int | None = None) -> int:
    """Where a pattern that always matches (a run of zero or more) ends."""
    m = pattern.match(buf, pos, len(buf) if endpos is None else endpos)
    assert m is not None
    return m.end()


def not_in(excluded: bytes) -> bytes:
    """A byte class of everything but `excluded`, spelled as ranges: re compiles it to a bitmap, about three
    times faster to scan than the negated class `[^...]`."""
    out, start = [], None
    for b in range(257):
        inside = b < 256 and b not in excluded
        if inside and start is None:
            start = b
        elif not inside and start is not None:
            out.append(b"\\x%02x-\\x%02x" % (start, b - 1))
            start = None
    return b"[" + b"".join(out) + b"]"


def body(q: int) -> bytes:
    """A quoted string's body: backslash escapes (in binary mode the client keeps an escaped NUL in a string)
    and doubled quotes. It stops before a backslash ending a line, which the client mangles (refused).
    Possessive loops, unrolled: the scanning stays in C."""
    plain = not_in(bytes([q]) + b"\\")
    return rb"%s*+(?:\\[^\n]%s*+|%c%c%s*+)*+" % (plain, plain, q, q, plain)


BODY = {q: re.compile(body(q)) for q in b"'\""}
BODY[0x60] = re.compile(rb"[^`]*+(?:``[^`]*+)*+")  # one byte excluded: re scans it fast as it is
WORD = re.compile(rb"[A-Za-z0-9_$\x80-\xff]+")
DIGITS = re.compile(rb"\d*")
NAME = re.compile(rb"`(?:[^`]|``)*`|[A-Za-z0-9_$\x80-\xff]+")
SKIP = re.compile(rb"(?:[ \t\n\v\f\r]+|/\*M?!\d*|\*/|/\*(?:[^*]|\*(?!/))*\*/|(?i:IF)\b|(?i:NOT)\b|(?i:EXISTS)\b)*")
GAP = re.compile(rb"(?:[ \t\n\v\f\r]+|/\*M?!\d*|\*/|/\*(?:[^*]|\*(?!/))*\*/)*")
NOT_A_NAME = {b"CHARACTER", b"CHARSET", b"DEFAULT", b"COLLATE", b"COMMENT", b"UPGRADE", b"READ"}
DB_VERBS = {b"CREATE", b"DROP", b"ALTER", b"REPLACE"}
REFUSED_WORDS = {b"PREPARE": "builds statements at run time (PREPARE)", b"EXECUTE": "runs statements built at "
                  "run time (EXECUTE)", b"SQL_MODE": "sets sql_mode outside a SET statement",
                  b"CHARACTER_SET_CLIENT": "sets the client character set outside a SET statement"}
NUL = "has a NUL byte outside a string (the client skips a line that starts with one)"
SPECIAL = frozenset(b";'\"`\\#-/*\n\x00")
LOOKAHEAD = {b"DATABASE", b"SCHEMA", b"SQL_MODE", b"CHARACTER_SET_CLIENT", b"CHARACTER", b"DEFINER"}



def assigns(buf: bytes, end: int) -> bool:
    """Whether what follows `end` (past spaces and comments) assigns, or cannot be told (refused alike)."""
    rest = buf[match_end(GAP, buf, end, min(len(buf), end + HEAD)):][:2]
    return not rest or rest.startswith((b"=", b":=", b"#", b"-"))


def delimiter_line(buf: bytes, i: int, final: bool) -> tuple[int, bytes] | None:
    """A line at `i` the client reads as its DELIMITER command (first word starting `delimiter`): where it ends
    and its argument (b"": none); (i, b"") for any other line; None when more bytes are needed. ValueError for
    a line not read here."""
    p = i
    while p < len(buf) and buf[p] in SPACE and buf[p] != 0x0A:
        p += 1
    if len(buf) - p < 9 and not final and b"\n" not in buf[p:]:
        return None
    if buf[p:p + 9].lower() != b"delimiter":
        return i, b""
    end = buf.find(b"\n", p)
    if end < 0:
        if not final:
            if len(buf) - p > 4096:
                raise ValueError("has a DELIMITER line longer than 4096 bytes")
            return None
        end = len(buf)
    if b"\x00" in buf[p:end]:
        raise ValueError(NUL)
    arg = delimiter_argument(buf[p:end])
    if arg is None:
        raise ValueError("sets a quoted DELIMITER, which the restore does not read")
    return end, arg


def delimiter_argument(line: bytes) -> bytes | None:
    """What the client's DELIMITER command reads from its line: the word after the command up to a space (b""
    when none), or None for a quoted one (not read here)."""
    words = line.split(None, 1)
    if len(words) < 2:
        return b""
    if words[1][:1] in (b"'", b'"', b"`"):
        return None
    return words[1].split(b" ", 1)[0]


def scanner(delimiter: bytes, words: bool) -> re.Pattern[bytes]:
    """The next byte at top level that needs a look: the delimiter first (the client checks it before
    comments), then quotes, backslash, comment starts, `;`, newline; in word mode every token."""
    alts = [re.escape(delimiter)] if delimiter != b";" else []
    alts.append(rb"[A-Za-z0-9_$\x80-\xff]+|[^ \t\v\f\r]" if words else rb"[;'\"`\\#\-/*\n\x00]")
    return re.compile(b"|".join(alts))


def runner(delimiter: bytes) -> re.Pattern[bytes]:
    """A run of top-level bytes that need no look, whole strings included (closed before the buffer's last
    byte, so that a doubled quote is never cut); stops before anything else."""
    plain = not_in(b";'\"`\\#-/*\n\x00" + delimiter[:1]) + b"++"
    strings = [rb"%c%s%c(?=[^%c])" % (q, body(q), q, q) for q in b"'\""]
    ident = rb"`[^`]*+(?:``[^`]*+)*+`(?=[^`])"
    lone = [rb"\%c(?=[^%c])" % (c, d) for c, d in (b"--", b"/*", b"*/") if c != delimiter[0]]
    return re.compile(rb"(?:" + b"|".join([plain, *strings, ident, *lone]) + rb")*+")
