"""Names in a MariaDB/MySQL restore stream that point at a database or an account, for the restore filter
(`providers.databases.mysql_confine`): the database after USE/DATABASE, a table qualified by another database
than the target (refused: the first line of defence), and a DEFINER (which becomes the restore's account)."""

from __future__ import annotations

import re

from providers.databases.mysql_lexemes import GAP, HEAD, NAME, NOT_A_NAME, SKIP, match_end

# Words after which `x.y` names a table (or trigger, routine, event) of database x; `DELETE FROM` is marked so.
QUALIFIED_AFTER = {b"INTO", b"TABLE", b"TABLES", b"UPDATE", b"JOIN", b"STRAIGHT_JOIN", b"TO", b"TRIGGER", b"VIEW",
                   b"PROCEDURE", b"FUNCTION", b"EVENT", b"CALL", b"TRUNCATE", b"EXISTS", b"DELETE FROM"}
DELETE_WORDS = {b"DELETE", b"LOW_PRIORITY", b"QUICK", b"IGNORE"}
# Words after which DEFINER = user starts a CREATE/ALTER's definer clause (b"": a statement's first word).
DEFINER_AFTER = {b"", b"CREATE", b"REPLACE", b"ALTER", b"UNDEFINED", b"MERGE", b"TEMPTABLE"}
_ID = rb"(?:`(?:[^`]|``)*`|'(?:[^'\\\n]|''|\\[^\n])*'|\"(?:[^\"\\\n]|\"\"|\\[^\n])*\"|[A-Za-z0-9_$.%\x80-\xff-]+)"
_WS = rb"[ \t\n\v\f\r]*"
DEFINER_VALUE = re.compile(rb"%s=%s(?:(?i:CURRENT_USER)(?![A-Za-z0-9_$\x80-\xff])(?:%s\(%s\))?|%s(?:%s@%s%s)?)" % (
    _WS, _WS, _WS, _WS, _ID, _WS, _WS, _ID))
_GAP = rb"(?:[ \t\n\v\f\r]+|/\*M?!\d*|\*/|/\*(?:[^*]|\*(?!/))*\*/)*"
# The table an INSERT or REPLACE names, when it is qualified by a database (group 1).
INSERT_TABLE = re.compile(rb"(?:%s(?i:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE|INTO)(?![A-Za-z0-9_$\x80-\xff]))*%s"
                          rb"(`(?:[^`]|``)*`|[A-Za-z0-9_$\x80-\xff]+)%s\." % (_GAP, _GAP, _GAP))


def database_name(buf: bytes, p: int, delimiter: bytes) -> tuple[int, bytes] | None:
    """Where the database name after USE/DATABASE at `p` starts (spaces, comments, IF [NOT] EXISTS skipped) and
    its bytes as written; None when no name follows; ValueError when one follows in a form not read here."""
    s = match_end(SKIP, buf, p, min(len(buf), p + HEAD))
    m = NAME.match(buf, s)
    raw = m.group() if m else b""
    cut = raw.find(delimiter)
    if cut >= 0:
        raw = raw[:cut]
    if not raw or (not raw.startswith(b"`") and raw.upper() in NOT_A_NAME):
        if buf[s:s + 1] in (b"'", b'"', b"#", b"-") or buf.startswith(b"/*", s):
            raise ValueError("names a database in a form the restore does not read")
        return None
    return s, raw


def other_database(buf: bytes, end: int, name: bytes, target: str) -> str:
    """`name.table` when `name`, ending at `end`, qualifies what follows it and is not `target`; else ""."""
    if name.upper() == target.encode().upper():
        return ""
    dot = match_end(GAP, buf, end, min(len(buf), end + HEAD))
    if buf[dot:dot + 1] != b".":
        return ""
    m = NAME.match(buf, match_end(GAP, buf, dot + 1, min(len(buf), dot + HEAD)))
    return (name + b"." + (m.group().strip(b"`") if m else b"")).decode(errors="replace")[:200]


def definer_end(buf: bytes, end: int) -> int:
    """Where the `= user` after DEFINER (ending at `end`) ends; -1 when it is not in a form read here."""
    m = DEFINER_VALUE.match(buf, end, min(len(buf), end + HEAD))
    return m.end() if m else -1
