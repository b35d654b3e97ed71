"""The two session settings that change how MariaDB/MySQL lexes a statement, followed through a restore stream's
SET statements: sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) and character_set_client (multi-byte sets whose
characters can end in a backslash or quote byte). Used by `providers.databases.mysql_confine`.
"""

from __future__ import annotations

import re

from stashplan.errors import TransferError


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# sql_mode names that leave string and identifier lexing as the restore filter reads it (combination modes
# ANSI, DB2, MAXDB, MSSQL, ORACLE and POSTGRESQL include ANSI_QUOTES and are not here).
SAFE_MODES = _names("""
REAL_AS_FLOAT PIPES_AS_CONCAT IGNORE_SPACE IGNORE_BAD_TABLE_OPTIONS ONLY_FULL_GROUP_BY NO_UNSIGNED_SUBTRACTION
NO_DIR_IN_CREATE NO_KEY_OPTIONS NO_TABLE_OPTIONS NO_FIELD_OPTIONS MYSQL323 MYSQL40 NO_AUTO_VALUE_ON_ZERO
STRICT_TRANS_TABLES STRICT_ALL_TABLES NO_ZERO_IN_DATE NO_ZERO_DATE ALLOW_INVALID_DATES ERROR_FOR_DIVISION_BY_ZERO
TRADITIONAL NO_AUTO_CREATE_USER HIGH_NOT_PRECEDENCE NO_ENGINE_SUBSTITUTION PAD_CHAR_TO_FULL_LENGTH
EMPTY_STRING_IS_NULL SIMULTANEOUS_ASSIGNMENT TIME_ROUND_FRACTIONAL TIME_TRUNCATE_FRACTIONAL
""")
# Client character sets whose multi-byte characters are made of bytes >= 0x80 only (or that have none):
# big5, cp932, gbk, gb18030 and sjis are left out (a trailing byte can be `\\` or a backquote).
SAFE_CHARSETS = _names("""
armscii8 ascii binary cp1250 cp1251 cp1256 cp1257 cp850 cp852 cp866 dec8 eucjpms euckr gb2312 geostd8 greek hebrew
hp8 keybcs2 koi8r koi8u latin1 latin2 latin5 latin7 macce macroman swe7 tis620 ujis utf8 utf8mb3 utf8mb4
""")
_KINDS = {"sql_mode": "m", "character_set_client": "c"}
_RELEVANT = re.compile(rb"(?i)sql_mode|character_set_client|names|charset|character|statement")
_TOKEN = re.compile(
    rb"(?P<ws>[ \t\n\v\f\r]+|/\*M?!\d*|\*/|/\*.*?\*/|#[^\n]*|--(?:[ \t\n\v\f\r\x00][^\n]*|$))"
    rb"|(?P<str>'[^'\\]*(?:(?:\\[^\x00]|'')[^'\\]*)*'|\"[^\"\\]*(?:(?:\\[^\x00]|\"\")[^\"\\]*)*\")"
    rb"|(?P<bq>`[^`]*(?:``[^`]*)*`)|(?P<op>@@|:=|[@=,.()])|(?P<word>[A-Za-z0-9_$\x80-\xff]+)|(?P<other>\\.|.)",
    re.S)
_SCOPES = {"GLOBAL", "SESSION", "LOCAL", "PERSIST", "PERSIST_ONLY"}

Token = tuple[str, bytes, int, int]  # kind, text, start, end


def _tokens(stmt: bytes) -> list[Token]:
    out: list[Token] = []
    for m in _TOKEN.finditer(stmt):
        kind = m.lastgroup or "other"
        if kind != "ws":
            out.append((kind, m.group(), m.start(), m.end()))
    return out


def _name(tok: Token) -> str | None:
    """The identifier a word, backquoted name or (for user variables) quoted string spells, else None."""
    kind, text, _, _ = tok
    if kind == "word":
        return text.decode("utf-8", "replace")
    if kind == "bq":
        return text[1:-1].replace(b"``", b"`").decode("utf-8", "replace")
    if kind == "str" and b"\\" not in text:
        q = text[:1]
        return text[1:-1].replace(q + q, q).decode("utf-8", "replace")
    return None


class Session:
    """What sql_mode and character_set_client hold, as far as the stream sets them: every value the session can
    reach is a checked literal or the session's initial value (saved by `prologue` in variables the dump
    cannot name). `SET x = @var` is rewritten to the value the filter knows `@var` holds."""

    def __init__(self, target: str, key: str) -> None:
        self.target = target
        self._key = key
        self._current: dict[str, str | None] = {"m": None, "c": None}  # None: the initial value
        self._saved: dict[str, tuple[str, str | None]] = {}  # user variable (upper case) -> (kind, value)

    def prologue(self) -> bytes:
        return (f"SET @{self._key}_m = @@SESSION.sql_mode, @{self._key}_c = @@SESSION.character_set_client;\n"
                .encode())

    def _refuse(self, what: str) -> TransferError:
        return TransferError(f"restore into database {self.target}: {what}; restore it into an AppBinding that "
                             "names no database")

    def _check(self, kind: str, value: str) -> str:
        if kind == "m":
            bad = [m for m in value.split(",") if m and m.upper() not in SAFE_MODES]
            if bad:
                raise self._refuse(f"the dump sets sql_mode to {value!r} ({bad[0]} changes how strings are read)")
            return value
        if value.lower() not in SAFE_CHARSETS:
            raise self._refuse(f"the dump sets the client character set to {value!r}, whose characters can hide "
                               "quotes and backslashes")
        return value

    def statement(self, stmt: bytes) -> bytes:
        """A SET statement (its text up to the delimiter), rewritten where it restores a saved value."""
        if not _RELEVANT.search(stmt):
            return stmt
        toks = _tokens(stmt)
        if len(toks) > 1 and toks[1][0] == "word" and toks[1][1].upper() == b"STATEMENT":
            raise self._refuse("the dump uses SET STATEMENT ... FOR, which the restore does not read")
        items: list[list[Token]] = [[]]
        depth = 0
        for tok in toks[1:]:
            depth += (tok[1] == b"(") - (tok[1] == b")")
            if tok[1] == b"," and depth == 0 and tok[0] == "op":
                items.append([])
            else:
                items[-1].append(tok)
        edits: list[tuple[int, int, bytes]] = []
        for item in items:
            self._item(item, edits)
        for start, end, text in sorted(edits, reverse=True):
            stmt = stmt[:start] + text + stmt[end:]
        return stmt

    def _item(self, item: list[Token], edits: list[tuple[int, int, bytes]]) -> None:
        words = [t[1].upper() if t[0] == "word" else b"" for t in item]
        k = 0
        while k < len(words) and words[k].decode() in _SCOPES:
            k += 1
        rest, rwords = item[k:], words[k:]
        if rwords[:1] == [b"NAMES"] or rwords[:1] == [b"CHARSET"] or rwords[:2] == [b"CHARACTER", b"SET"]:
            at = 2 if rwords[0] == b"CHARACTER" else 1
            value = _name(rest[at]) if len(rest) > at else None
            if value is None or value.upper() == "DEFAULT":
                raise self._refuse("the dump sets the client character set in a form the restore does not read")
            self._current["c"] = self._check("c", value)
            return
        target, n = self._target(rest)
        if target is None or n >= len(rest) or rest[n][0] != "op" or rest[n][1] not in (b"=", b":="):
            if any(_KINDS.get((_name(t) or "").lower()) for t in item):
                raise self._refuse("the dump names sql_mode or character_set_client in a form the restore does "
                                   "not read")
            return
        kind, name = target
        rhs = rest[n + 1:]
        if kind == "user":
            source = self._sysvar(rhs)
            if source is not None:
                self._saved[name.upper()] = (source, self._current[source])
            else:
                self._saved.pop(name.upper(), None)
            return
        if kind not in _KINDS:
            return
        k2 = _KINDS[kind]
        if len(rhs) == 1 and rhs[0][0] in ("str", "word", "bq") and (value := _name(rhs[0])) is not None:
            self._current[k2] = self._check(k2, value)
            return
        if self._sysvar(rhs) == k2:
            return
        if len(rhs) == 2 and rhs[0][1] == b"@" and (var := _name(rhs[1])) is not None:
            saved = self._saved.get(var.upper())
            if saved is None or saved[0] != k2:
                raise self._refuse(f"the dump sets {kind} from @{var}, whose value the restore does not know")
            value = saved[1]
            text = f"@{self._key}_{k2}".encode() if value is None else b"'" + value.encode() + b"'"
            edits.append((rhs[0][2], rhs[1][3], text))
            self._current[k2] = value
            return
        raise self._refuse(f"the dump sets {kind} to an expression the restore does not read")

    @staticmethod
    def _target(rest: list[Token]) -> tuple[tuple[str, str] | None, int]:
        """(("user", name) or (system variable, ""), index after it) for an assignment's left side."""
        if len(rest) >= 2 and rest[0][1] == b"@" and (name := _name(rest[1])) is not None:
            return ("user", name), 2
        i = 1 if rest[:1] and rest[0][1] == b"@@" else 0
        if len(rest) > i + 2 and rest[i + 1][1] == b"." and (_name(rest[i]) or "").upper() in _SCOPES:
            i += 2
        if len(rest) > i and rest[i][0] in ("word", "bq"):
            return ((_name(rest[i]) or "").lower(), ""), i + 1
        return None, 0

    @staticmethod
    def _sysvar(rhs: list[Token]) -> str | None:
        """"m"/"c" when `rhs` is exactly @@[session.|local.]sql_mode or character_set_client."""
        if not rhs or rhs[0][1] != b"@@":
            return None
        rest = rhs[1:]
        if len(rest) == 3 and rest[1][1] == b"." and (_name(rest[0]) or "").upper() in ("SESSION", "LOCAL"):
            rest = rest[2:]
        return _KINDS.get((_name(rest[0]) or "").lower()) if len(rest) == 1 else None
