r"""A psql script read as psql and the server read it: statements end at a `;` outside quotes, comments,
parentheses and `CREATE FUNCTION ... BEGIN ... END` (psql's own rule); `COPY ... FROM stdin` data runs to its `\.`
line. Each statement is handed, with its tokens, to a callback that keeps, rewrites or drops it.
Whatever psql or the server could read differently from this lexer is refused: meta-commands, psql variables,
strings whose end depends on standard_conforming_strings (or a multibyte client encoding), `\;`."""

from __future__ import annotations

import re
from collections.abc import Callable

from providers.databases.copy_data import rows_only
from stashplan.errors import TransferError

MAX_STATEMENT = 64 << 20  # bytes of one SQL statement held at most (pg_dump's big data is COPY data)

IDENT, QIDENT, STR, NUM, OP = range(5)
Token = tuple[int, bytes]  # (kind, value): identifiers lowercased, quoted identifiers and strings unquoted

_SPACE = re.compile(rb"[ \t\n\r\f\v]*")
_FAST = re.compile(rb"(?P<ws>[ \t\n\r\f\v]+)(?=[^ \t\n\r\f\v])"
                   rb"|(?P<id>[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)(?=[^A-Za-z0-9_$\x80-\xff'])"
                   rb"|(?P<str>'[^'\\]*')(?=[^'])|(?P<num>[0-9][0-9A-Za-z_.]*)(?=[^0-9A-Za-z_.'])"
                   rb"|(?P<op>[,=+*<>\[\]])")
# pg_dump --inserts' statement, literals only (no comment, dollar or call): read alike by psql and
# the server whatever their settings, and harmless; it skips the token loop
_NAME_RE = rb'(?:"[^"\\\n]*"|[a-z_][a-z0-9_$]*)'
# a string that ends at the same quote whether backslashes escape or not, and whatever multibyte encoding
_STRING = rb"'(?:[^'\\\x80-\xff]++|\\[^'\x80-\xff]|[\x80-\xff]+(?!\\)|'')*'"
_LITERAL = rb"(?:" + _STRING + rb"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NULL|true|false)"
_ROW = rb"\(" + _LITERAL + rb"(?:, " + _LITERAL + rb")*\)"
_ONE_INSERT = (rb"INSERT INTO " + _NAME_RE + rb"(?:\." + _NAME_RE + rb")? (?:\(" + _NAME_RE + rb"(?:, " + _NAME_RE
               + rb")*\) )?(?:OVERRIDING (?:SYSTEM|USER) VALUE )?VALUES(?: |\n\t)" + _ROW + rb"(?:,\n\t" + _ROW
               + rb")*(?: ON CONFLICT DO NOTHING)?;")
_INSERT = re.compile(rb"(?:" + _ONE_INSERT + rb"\n)*" + _ONE_INSERT)  # a run of them, handed over as one
_IDENT = re.compile(rb"[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*")
_NUMBER = re.compile(rb"[0-9.][0-9A-Za-z_.]*")
_TAG = re.compile(rb"\$[A-Za-z0-9_\x80-\xff]*")
_PARAM = re.compile(rb"\$[0-9]+[A-Za-z_\x80-\xff]?")
_DOLLAR = re.compile(rb"\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$")
_STD_END = re.compile(rb"[^']*(?:''[^']*)*'")  # a standard-conforming string's rest, through its closing quote
_ESC_END = re.compile(rb"(?:[^'\\]|\\.|'')*'", re.S)  # an E'' string's rest (backslash escapes)
_QIDENT_END = re.compile(rb'[^"]*(?:""[^"]*)*"')
_VARIABLE = re.compile(rb"""(?::'([^'\n]*)'|:"([^"\n]*)"|:\{\?([^}\n]*)\}|:([A-Za-z0-9_\x80-\xff]+))""")
_PSQL_VARIABLE = re.compile(rb"[A-Z][A-Z0-9_]*")  # psql's own variables (DBNAME, VERSION, ...) are upper case
_RESTRICT = re.compile(rb"\\(?:un)?restrict [A-Za-z0-9]+\r?\n?")
_COPY_END = re.compile(rb"[ \t\r]*\n")
_HIGH = frozenset(range(0x80, 0x100))


def _refuse(what: str) -> TransferError:
    return TransferError(f"psql restore: {what}; the stream is refused")


class StatementLexer:
    """Feed it the stream; `on_statement(text, tokens)` returns the bytes to send for each whole statement
    (the text itself, a rewrite, or b"" to drop it). COPY data passes untouched. Raises TransferError."""

    def __init__(self, on_statement: Callable[[bytes, list[Token]], bytes],
                 on_meta: Callable[[bytes], object] | None = None) -> None:
        self._on = on_statement
        self._on_meta = on_meta  # told of a meta-command line that starts a line between statements; may raise
        self._buf = bytearray()  # the current statement from its first byte (with comments before it)
        self._pos = 0  # scanned up to here
        self._start = 0  # where the current statement starts in `_buf` (ended ones are cut off once per feed)
        self._tokens: list[Token] = []
        self._parens = self._begins = 0
        self._words: list[bytes] = []  # psql's CREATE FUNCTION/PROCEDURE ... BEGIN heuristic
        self._copy = False  # in COPY data
        self._copy_eol = False  # after a COPY ... FROM stdin; its line's end
        self._line_start = True  # COPY data: the held bytes start a line
        self.lead = 0  # while `on_statement` runs: the bytes of its text before the statement's first token
        self._std = True  # standard_conforming_strings as the stream declares it (pg_dump: on)
        self._pin = False  # the current statement holds a string whose end depends on it
        self._lead = -1

    def feed(self, data: bytes) -> bytes:
        if self._copy and not self._copy_eol and not self._buf and rows_only(data, self._line_start):
            self._line_start = data.endswith(b"\n") if data else self._line_start
            return data  # COPY rows pass as they are: no copy of the bulk of a dump
        self._buf += data
        out = bytearray()
        while True:
            if self._copy:
                if not self._copy_data(out):
                    break
            elif not self._scan(out):
                break
        self._compact()
        if len(self._buf) > MAX_STATEMENT:
            raise _refuse(f"a statement longer than {MAX_STATEMENT >> 20} MiB")
        return bytes(out)

    def _compact(self) -> None:
        if self._start:
            del self._buf[:self._start]
            self._pos -= self._start
            self._lead -= self._start
            self._start = 0

    def flush(self) -> bytes:
        """End of stream: psql runs an unterminated last statement too, so it is judged like the others."""
        out = bytearray()
        if self._copy:
            out += self._buf
        else:
            while not self._copy and self._scan(out, final=True):
                pass
            self._compact()
            if self._copy:
                out += self._buf
            else:
                self.lead = max(0, self._lead)
                out += self._pinned(self._on(bytes(self._buf), self._tokens)) if self._tokens else self._buf
        self._buf.clear()
        self._pos = 0
        self._tokens = []
        return bytes(out)

    # --- COPY data -----------------------------------------------------------------------------------------

    def _copy_data(self, out: bytearray) -> bool:
        """Pass COPY rows through up to and including the `\\.` line; False when more input is needed."""
        buf = self._buf
        if self._copy_eol:  # the rest of the COPY statement's line: blanks only (psql reads data from the next)
            m = _COPY_END.match(buf)
            if m is None:
                if buf.strip(b" \t\r"):
                    raise _refuse("a statement follows COPY ... FROM stdin on its line")
                return False
            out += buf[:m.end()]
            del buf[:m.end()]
            self._copy_eol, self._line_start = False, True
            return True
        cand = 0 if self._line_start else buf.find(b"\n\\.") + 1 or -1
        while cand >= 0:
            if buf.startswith(b"\\.\n", cand) or buf.startswith(b"\\.\r\n", cand):
                stop = buf.index(b"\n", cand) + 1
                out += buf[:stop]
                del buf[:stop]
                self._copy, self._pos = False, 0
                return True
            cand = buf.find(b"\n\\.", cand) + 1 or -1
        keep = buf.rfind(b"\n") + 1
        tail = bytes(buf[keep:])
        if (keep == 0 and not self._line_start) or not (b"\\.\r\n".startswith(tail) or b"\\.\n".startswith(tail)):
            keep = len(buf)  # the last line cannot be the marker
        self._line_start = keep < len(buf) or (buf.endswith(b"\n") if buf else self._line_start)
        out += buf[:keep]
        del buf[:keep]
        return False

    # --- SQL ------------------------------------------------------------------------------------------------

    def _scan(self, out: bytearray, *, final: bool = False) -> bool:
        """Scan on from `_pos`; at a statement's end hand it over and return True; False when input runs out."""
        buf = self._buf
        n = len(buf)
        pos = self._pos
        tokens = self._tokens
        while True:
            if not tokens and buf.startswith(b"INSERT", pos) and (insert := _INSERT.match(buf, pos)) is not None:
                self._lead = pos
                tokens += [(IDENT, b"insert"), (IDENT, b"into")]
                self._end_statement(out, insert.end())
                return True
            fast = _FAST.match(buf, pos)  # the common tokens, whole (a byte that cannot continue them follows)
            if fast is not None:
                group = fast.lastgroup
                if group != "ws":
                    if not tokens:
                        self._lead = pos
                    if group == "id":
                        word = fast.group().lower()
                        self._word(word)
                        tokens.append((IDENT, word))
                    else:
                        tokens.append((STR, fast.group()[1:-1]) if group == "str" else
                                      (NUM if group == "num" else OP, fast.group()))
                pos = fast.end()
                continue
            pos = _SPACE.match(buf, pos).end()  # type: ignore[union-attr]
            if pos >= n:
                break
            c = buf[pos]
            start = pos
            if not tokens:
                self._lead = pos
            if c == 0x3B:  # ;
                pos += 1
                if self._parens == 0 and self._begins == 0:
                    self._end_statement(out, pos)
                    return True
                tokens.append((OP, b";"))
            elif c == 0x27:  # '
                end = self._string(buf, pos + 1, escapes=False)
                if end < 0:
                    break
                tokens.append((STR, _unquote(buf[pos + 1:end - 1])))
                pos = end
            elif c == 0x22:  # "
                m = _QIDENT_END.match(buf, pos + 1)
                if m is None:
                    break
                pos = m.end()
                tokens.append((QIDENT, bytes(buf[start + 1:pos - 1]).replace(b'""', b'"')))
            elif c == 0x2D and buf.startswith(b"--", pos):  # -- comment
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    pos = n if final else start
                    break
                pos = nl + 1
            elif c == 0x2F and buf.startswith(b"/*", pos):
                end = _block_comment_end(buf, pos)
                if end < 0:
                    pos = n if final else start
                    break
                pos = end
            elif c == 0x24:  # $
                m = _DOLLAR.match(buf, pos)
                if m is not None:
                    close = buf.find(m.group(), m.end())
                    if close < 0:
                        break
                    pos = close + len(m.group())
                    tokens.append((STR, bytes(buf[m.end():close])))
                else:
                    if not final and _TAG.match(buf, pos).end() >= n:  # type: ignore[union-attr]
                        break  # perhaps a dollar quote's tag, cut by the chunk
                    p = _PARAM.match(buf, pos)
                    pos = p.end() if p else pos + 1
                    tokens.append((OP, bytes(buf[start:pos])))
            elif c == 0x5C:  # backslash: a psql meta-command (pg_dump's \restrict pair alone passes, between statements)
                eol = buf.find(b"\n", pos)
                if eol < 0 and not final:
                    break  # the whole line first
                line = bytes(buf[pos:n if eol < 0 else eol + 1])
                at_start = not tokens and (pos == 0 or buf[pos - 1] == 10)
                if at_start and self._on_meta is not None:
                    self._on_meta(line)  # may refuse it in its own words
                if at_start and _RESTRICT.fullmatch(line):
                    pos += len(line)
                    continue
                raise _refuse(f"the dump runs a psql meta-command ({line.strip().decode(errors='replace')[:60]})")
            elif c == 0x3A:  # :  (:: is a cast; :name, :'name', :"name" are psql variables)
                if buf.startswith(b"::", pos):
                    pos += 2
                    tokens.append((OP, b"::"))
                    continue
                m = _VARIABLE.match(buf, pos)
                if not final and (m is None or m.end() >= n) and buf.find(b"\n", pos) < 0:
                    break  # a variable's name may be cut by the chunk (it never spans lines)
                if m is not None:
                    name = next(g for g in m.groups() if g is not None)
                    if _PSQL_VARIABLE.fullmatch(name):
                        raise _refuse(f"the dump names the psql variable :{name.decode(errors='replace')}")
                pos += 1
                tokens.append((OP, b":"))
            elif c in _HIGH or c == 0x5F or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
                m = _IDENT.match(buf, pos)
                assert m is not None
                if m.end() >= n and not final:
                    break  # the word may go on
                word = m.group().lower()
                if word == b"e" and buf.startswith(b"'", m.end()):
                    end = self._string(buf, m.end() + 1, escapes=True)
                    if end < 0:
                        break
                    tokens.append((STR, bytes(buf[m.end() + 1:end - 1])))
                    pos = end
                    continue
                pos = m.end()
                self._word(word)
                tokens.append((IDENT, word))
            elif 0x30 <= c <= 0x39 or (c == 0x2E and pos + 1 < n and 0x30 <= buf[pos + 1] <= 0x39):
                m = _NUMBER.match(buf, pos)
                assert m is not None
                if m.end() >= n and not final:
                    break
                pos = m.end()
                if buf.startswith(b"'", pos):
                    raise _refuse("a number runs into a string literal (psql versions read it differently)")
                tokens.append((NUM, bytes(m.group())))
            else:
                if c in (0x2D, 0x2F) and pos + 1 >= n and not final:
                    break  # perhaps a comment, cut by the chunk
                pos += 1
                if c == 0x28:
                    self._parens += 1
                elif c == 0x29 and self._parens:
                    self._parens -= 1
                tokens.append((OP, bytes(buf[start:pos])))
        self._pos = pos
        return False

    def _string(self, buf: bytearray, pos: int, *, escapes: bool) -> int:
        """The end (past the closing quote) of a string whose body starts at `pos`, or -1 if it is not all here.
        A standard string ('', not E'') is read with the standard_conforming_strings the stream declared; when its
        end would differ with the other value, its statement is pinned (`_pin`): that value is SET on a line of its
        own before it, so psql and the server read it as this lexer did whatever a function may have changed. A
        backslash after a byte >= 0x80 where backslashes escape is refused (a multibyte client encoding may own it)."""
        escaping = escapes or not self._std
        m = (_ESC_END if escaping else _STD_END).match(buf, pos)
        if m is None:
            return -1
        end = m.end()
        if end >= len(buf) or (buf[end] == 0x27 and end + 1 >= len(buf)):
            return -1  # '' may follow
        body = buf[pos:end - 1]
        if b"\\" in body:
            if not escapes:
                other = (_STD_END if escaping else _ESC_END).match(buf, pos)
                if other is None or other.end() != end:
                    self._pin = True
            if escaping and re.search(rb"[\x80-\xff]\\", body):
                raise _refuse("a backslash after a non-ASCII byte in a string literal (the client encoding "
                              "decides whether it escapes)")
        return end

    def _word(self, word: bytes) -> None:
        """psql: in CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN ... END (and CASE ... END inside) hold `;`."""
        w = self._words
        if len(w) >= 4 and w[0] != b"c":
            return
        if len(w) < 4:
            w.append(word[:1] if word in (b"create", b"function", b"procedure", b"or", b"replace") else b"")
        first = w + [b""] * (4 - len(w))
        if first[0] == b"c" and (first[1] in (b"f", b"p") or (first[1:3] == [b"o", b"r"] and first[3] in (b"f", b"p"))) \
                and self._parens == 0:
            if word == b"begin" or (word == b"case" and self._begins):
                self._begins += 1
            elif word == b"end" and self._begins:
                self._begins -= 1

    def _end_statement(self, out: bytearray, pos: int) -> None:
        text, tokens = bytes(self._buf[self._start:pos]), self._tokens
        self.lead = max(0, self._lead - self._start)
        self._start = self._pos = pos
        self._tokens, self._words = [], []
        self._parens = self._begins = 0
        out += self._pinned(self._on(text, tokens))
        self._declared(tokens)
        if is_copy_in(tokens):
            self._copy = self._copy_eol = True
            self._compact()


    def _pinned(self, text: bytes) -> bytes:
        if not self._pin or not text:
            return text
        self._pin = False
        return b"\nSET standard_conforming_strings = " + (b"on" if self._std else b"off") + b";\n" + text

    def _declared(self, t: list[Token]) -> None:
        """Follow `SET [SESSION|LOCAL] standard_conforming_strings {=|TO} value` and its RESET."""
        if t[0] not in ((IDENT, b"set"), (IDENT, b"reset")):
            return
        words = [v for k, v in t if k in (IDENT, STR, QIDENT)]
        if words[:1] in ([b"set"], [b"reset"]) and len(words) > 1 and words[1] in (b"session", b"local"):
            words = words[:1] + words[2:]
        if len(words) < 2 or words[1].lower() != b"standard_conforming_strings":
            return
        rest = [w for w in words[2:] if w.lower() != b"to"] if words[0] == b"set" else []
        value = rest[0].lower() if rest else b"default"
        self._std = value not in (b"off", b"false", b"no", b"0", b"of", b"fa", b"f", b"n")


def is_copy_in(tokens: list[Token]) -> bool:
    """`COPY ... FROM stdin`: psql sends the rows that follow the statement's line."""
    if not tokens or tokens[0] != (IDENT, b"copy"):
        return False
    depth = 0
    for i, (kind, value) in enumerate(tokens):
        if kind == OP and value == b"(":
            depth += 1
        elif kind == OP and value == b")":
            depth = max(0, depth - 1)
        elif depth == 0 and (kind, value) == (IDENT, b"from") and i + 1 < len(tokens):
            return tokens[i + 1] == (IDENT, b"stdin")
    return False


def _unquote(body: bytes | bytearray) -> bytes:
    return bytes(body).replace(b"''", b"'")


def _block_comment_end(buf: bytearray, pos: int) -> int:
    """The end of the (nested) /* */ comment at `pos`, or -1 if it is not all here."""
    depth, i = 0, pos
    while True:
        a, b = buf.find(b"/*", i), buf.find(b"*/", i)
        if b < 0:
            return -1
        if 0 <= a < b:
            depth += 1
            i = a + 2
        else:
            depth -= 1
            i = b + 2
            if depth == 0:
                return i
