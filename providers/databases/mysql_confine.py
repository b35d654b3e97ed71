r"""Keeps a mariadb/mysql restore in its target database: a streaming lexer reads the dump as the client
(`--binary-mode`, which splits statements at its delimiter) and the server (which runs every `;`-separated
statement of what the client sends) read it, rewrites `USE` and `CREATE`/`DROP`/`ALTER DATABASE` of the dump's
database to the target and DEFINERs to the restore's account, refuses tables named in another database
(`mysql_names`), follows sql_mode and the client character set (`mysql_session`), and refuses what it
cannot read exactly. Compiled regexes do the scanning; Python looks at statement starts and quote ends.
"""

from __future__ import annotations

import secrets

from providers.databases.mysql_lexemes import (
    BODY,
    DB_VERBS,
    DIGITS,
    GAP,
    HEAD,
    LOOKAHEAD,
    NUL,
    REFUSED_WORDS,
    SET_MAX,
    SPACE,
    SPECIAL,
    WORD,
    assigns,
    delimiter_line,
    match_end,
    runner,
    scanner,
)
from providers.databases.mysql_names import (
    DEFINER_AFTER,
    DELETE_WORDS,
    INSERT_TABLE,
    QUALIFIED_AFTER,
    database_name,
    definer_end,
    other_database,
)
from providers.databases.mysql_session import Session
from stashplan.errors import TransferError

_FAST, _WORDS, _SET = 0, 1, 2  # how a statement's top level is scanned (by its first word)
_TOP, _QUOTE, _COMMENT, _LINE = range(4)  # lexer states


class MySQLConfine:
    """A restore stream filter: `feed` returns what can go to the client now, `flush` the rest."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._source = ""
        self._session = Session(target, "stashplan_" + secrets.token_hex(8))
        self._buf = b""
        self._i = 0  # next byte to lex in _buf
        self._state = _TOP
        self._quote = 0
        self._exec_quote = False  # the open string began inside an executable comment
        self._in_exec = False  # inside /*! ... */ (its content is code)
        self._client_empty = True  # the client holds nothing since its last delimiter
        self._stmt_start = True  # the next code byte starts a statement (the server's or the client's)
        self._line_start = True
        self._mode = _FAST
        self._prev = b""  # word mode: the previous token (upper case word or punctuation)
        self._hold: int | None = None  # start of a SET statement held until its end
        self._delimiter = b";"
        self._scan = {m: scanner(b";", m == _WORDS) for m in (_FAST, _WORDS)}
        self._run = runner(b";")
        self._started = False
        self._qstart = -1
        self._stmt_in_exec = False  # the statement began inside an executable comment

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = self._lex(final=False)
        if not self._started:
            self._started = True
            return self._session.prologue() + out
        return out

    def flush(self) -> bytes:
        return self._lex(final=True)

    @property
    def holding(self) -> bool:
        """Code is held back, or the stream stands inside a statement, string or comment (where a parallel
        restore's unit must not end)."""
        return bool(self._buf.strip()) or self._state != _TOP or not self._client_empty or self._in_exec

    def _refuse(self, what: str) -> TransferError:
        return TransferError(f"restore into database {self.target}: the dump {what}; restore it into an "
                             "AppBinding that names no database")

    def _set_delimiter(self, delimiter: bytes) -> None:
        if not delimiter or len(delimiter) > 15 or any(c in b"'\"`\\" or c >= 0x80 for c in delimiter) \
                or delimiter.startswith((b"#", b"--", b"/*")):
            raise self._refuse(f"sets the delimiter {delimiter.decode(errors='replace')!r}, which the restore does "
                               "not read")
        self._delimiter = delimiter
        self._scan = {m: scanner(delimiter, m == _WORDS) for m in (_FAST, _WORDS)}
        self._run = runner(delimiter)

    def _lex(self, *, final: bool) -> bytes:
        buf, i, n = self._buf, self._i, len(self._buf)
        while i < n:
            state = self._state
            if state == _QUOTE:
                q = self._quote
                k = match_end(BODY[q], buf, i)
                if self._exec_quote and buf.find(b"*/", max(i - 1, 0), k + 1) >= 0:
                    raise self._refuse("has */ inside a string within an executable comment (/*!...*/), where "
                                       "the server and the client end the comment in different places")
                if k >= n or (k + 1 >= n and not final):
                    i = k
                    break  # the quote or backslash at the end decides with the next byte
                if buf[k] != q:
                    raise self._refuse("ends a line with a backslash inside a string (the client mangles it)")
                self._state, i, self._line_start = _TOP, k + 1, False
                if self._mode == _WORDS:
                    prev, self._prev = self._prev, b"'"
                    if q == 0x60 and self._qstart >= 0 and k - self._qstart <= 64:
                        name = buf[self._qstart + 1:k].replace(b"``", b"`")
                        self._qualifier(buf, k + 1, name, prev)
                        self._word(buf, k + 1, name.upper())
                        buf, n = self._buf, len(self._buf)
                continue
            if state == _COMMENT:
                k = buf.find(b"*/", i)
                if buf.find(b"\x00", i, n if k < 0 else k) >= 0:
                    raise self._refuse(NUL)
                if k < 0:
                    i = max(i, n - 1)
                    break
                self._state, i, self._line_start = _TOP, k + 2, False
                continue
            if state == _LINE:  # to the end of the line
                k = buf.find(b"\n", i)
                if k < 0:
                    i = n
                    break
                self._state, i = _TOP, k
                continue
            if self._line_start and self._client_empty:
                r = self._delimiter_line(buf, i, final)
                if r is None:
                    break
                if r != i:
                    i = r
                    continue
            if self._stmt_start:
                r = self._statement_start(buf, i, final)
                if r is None:
                    break
                buf, n = self._buf, len(self._buf)
                if r != i:
                    i = r
                    continue
            words = self._mode == _WORDS
            if not words and not self._in_exec:
                e = match_end(self._run, buf, i)
                if e > i:
                    i, self._line_start = e, False
                    if i >= n:
                        break
            m = self._scan[_WORDS if words else _FAST].search(buf, i)
            if m is None:  # nothing to look at, unless the buffer ends with the start of a longer delimiter
                cut = next((k for k in range(min(len(self._delimiter) - 1, n - i), 0, -1)
                            if buf.endswith(self._delimiter[:k])), 0) if not final else 0
                i, self._line_start = n - cut, self._line_start and cut == n - i
                break
            j, tok = m.start(), m.group()
            if j > i:
                self._line_start = False
            delim = self._delimiter
            if tok == delim:
                i = self._boundary(buf, j, client=True)
                buf, n = self._buf, len(self._buf)
                continue
            c = tok[0]
            if n - j < len(delim) and delim.startswith(buf[j:]) and not final:
                i = j
                break
            if (words and len(tok) > 1) or (words and c not in SPECIAL):
                if len(tok) > 1 or WORD.match(tok):
                    cut = tok.find(delim)
                    if cut > 0:
                        tok = tok[:cut]
                    end = j + len(tok)
                    if not final and (end >= n or (n - end < HEAD and (tok.upper() in LOOKAHEAD
                                                                      or self._prev in QUALIFIED_AFTER))):
                        i = j
                        break
                    self._qualifier(buf, end, tok, self._prev)
                    self._word(buf, end, tok.upper())
                    buf, n = self._buf, len(self._buf)
                    i, self._line_start = end, False
                    continue
                self._prev, i, self._line_start = tok, j + 1, False
                continue
            if c == 0x0A:
                self._line_start, i = True, j + 1
                continue
            self._line_start = False
            if c == 0:
                raise self._refuse(NUL)
            if c == 0x3B:  # `;` ends a statement for the server (the client may send several at once)
                i = self._boundary(buf, j, client=False)
                buf, n = self._buf, len(self._buf)
                continue
            if c in b"'\"`":
                self._state, self._quote, self._qstart = _QUOTE, c, j
                self._exec_quote = self._in_exec
                i = j + 1
                continue
            if j + 3 >= n and not final:  # comment starts, `--x`, `\X`, `*/` and `/*M!` look up to 3 bytes on
                i = j
                break
            nxt = buf[j + 1] if j + 1 < n else -1
            if c == 0x5C:  # the client consumes `\X` (X never opens a string); `\C` is its charset command
                if nxt == 0x43:
                    raise self._refuse("runs the client command \\C (character set)")
                if nxt == 0:
                    self._state, i = _LINE, j
                else:
                    i = j + 1 if nxt in (0x0A, -1) else j + 2
                continue
            if c == 0x23:  # `#`
                self._state, i = _LINE, j
                continue
            if c == 0x2D and nxt == 0x2D:
                r = self._dashes(buf, j, n)
                if r < 0:
                    self._state, i = _LINE, j
                else:
                    i = r
                continue
            if c == 0x2F and nxt == 0x2A:
                r = self._comment_open(buf, j, final)
                if r is None:
                    i = j
                    break
                i = r
                continue
            if c == 0x2A and nxt == 0x2F and self._in_exec:
                self._in_exec, i = False, j + 2
                if self._stmt_in_exec:  # the server may have skipped the comment: what follows can start one
                    i = self._boundary(buf, i, client=False) - 1
                    buf, n = self._buf, len(self._buf)
                continue
            if words:
                self._prev = tok[:1]
            i = j + 1
        return self._emit(buf, i, final)

    def _emit(self, buf: bytes, i: int, final: bool) -> bytes:
        """Everything before `i` (or before a held SET statement) goes out; the rest waits."""
        if self._hold is not None and i - self._hold > SET_MAX:
            raise self._refuse(f"has a SET statement longer than {SET_MAX} bytes")
        if final and self._hold is not None:
            self._finish_set(buf, len(buf))
            buf, i = self._buf, len(self._buf)
        keep = len(buf) if final else i if self._hold is None else self._hold
        if self._state == _QUOTE and self._mode == _WORDS and self._quote == 0x60 and not final:
            keep = min(keep, self._qstart) if i - self._qstart <= 64 else keep
        out, self._buf = buf[:keep], buf[keep:]
        self._i = i - keep
        self._qstart -= keep
        if self._hold is not None:
            self._hold -= keep
        return out

    def _dashes(self, buf: bytes, j: int, n: int) -> int:
        """-1 when `--` at `j` starts a comment for the client, else where lexing goes on."""
        third = buf[j + 2] if j + 2 < n else 0x0A
        if third in SPACE or third == 0 or self._client_empty:
            return -1
        if third < 0x20 or third == 0x7F:
            raise self._refuse("has `--` before a control character (a comment for the server, not the client)")
        if self._mode == _WORDS:
            self._prev = b"-"
        return j + 1

    def _comment_open(self, buf: bytes, j: int, final: bool) -> int | None:
        if buf[j + 2] == 0x21 or buf[j + 2:j + 4] == b"M!":
            if self._in_exec:
                raise self._refuse("nests executable comments (/*! inside /*!)")
            end = match_end(DIGITS, buf, j + (3 if buf[j + 2] == 0x21 else 4))  # the version
            if end >= len(buf) and not final:
                return None
            self._in_exec, self._client_empty = True, False  # code for the client
            return end
        self._state = _COMMENT
        return j + 2

    def _boundary(self, buf: bytes, j: int, *, client: bool) -> int:
        if self._hold is not None:
            self._finish_set(buf, j)
            shift = len(self._buf) - len(buf)
            j += shift
        self._stmt_start, self._mode, self._prev, self._stmt_in_exec = True, _FAST, b"", False
        if client:
            self._client_empty = True
            return j + len(self._delimiter)
        return j + 1

    def _finish_set(self, buf: bytes, end: int) -> None:
        start, self._hold = self._hold or 0, None
        if (new := self._session.statement(buf[start:end])) != buf[start:end]:
            self._buf = buf[:start] + new + buf[end:]

    def _delimiter_line(self, buf: bytes, i: int, final: bool) -> int | None:
        """A DELIMITER command line (the client holding nothing) sets the delimiter. None: more bytes needed."""
        try:
            found = delimiter_line(buf, i, final)
        except ValueError as exc:
            raise self._refuse(str(exc)) from None
        if found is None:
            return None
        end, arg = found
        if arg and b"\\" not in arg:  # the client refuses a backslash and keeps its delimiter
            self._set_delimiter(arg)
        return end

    def _statement_start(self, buf: bytes, i: int, final: bool) -> int | None:
        """At the first code byte of a statement: choose how to scan it and look at its head. Returns where
        lexing goes on (i itself when the byte is code), or None when more bytes are needed."""
        n = len(buf)
        c = buf[i]
        if c in SPACE:
            if c == 0x0A:
                self._line_start = True
            else:
                self._line_start = False
            return i + 1
        if buf.startswith(self._delimiter, i):
            return i  # an empty statement: the scanner handles the delimiter
        if n - i < 4 and not final:
            return None
        if c == 0x23 or buf.startswith(b"--", i) or buf.startswith(b"/*", i) or (c == 0x2A and self._in_exec
                                                                                 and buf.startswith(b"*/", i)):
            return i  # comments and executable comment marks: the scanner handles them, the start waits
        if c == 0x3B:
            return i
        if c == 0x5C and buf[i + 1:i + 2] in (b"\n", b"\x00", b"-", b""):  # not code: dropped by the client
            if buf[i + 1:i + 2] == b"\x00":
                self._state = _LINE
            return i + (2 if buf[i + 1:i + 2] == b"-" else 1)
        m = WORD.match(buf, i)
        word = m.group() if m else b""
        cut = word.find(self._delimiter)
        if cut >= 0:
            word = word[:cut]
        end = i + len(word)
        word = word.upper()
        if not final and (end >= n or (word in (b"USE", b"INSERT", b"REPLACE") and n - end < HEAD)):
            return None
        self._stmt_start, self._client_empty, self._line_start = False, False, False
        self._stmt_in_exec = self._in_exec
        if word.startswith(b"DELIMITER"):
            raise self._refuse("changes DELIMITER other than on a line of its own")
        if word in (b"INSERT", b"REPLACE"):
            self._mode = _FAST
            if q := INSERT_TABLE.match(buf, end, min(n, end + HEAD)):
                self._qualifier(buf, q.end() - 1, q.group(1).strip(b"`").replace(b"``", b"`"), b"INTO")
        elif word == b"SET":
            self._mode, self._hold = _SET, i
        else:
            self._mode, self._prev = _WORDS, b""
            if word == b"USE":
                self._name_after(buf, end)
        return i

    def _word(self, buf: bytes, end: int, word: bytes) -> None:
        """Word mode: a word at top level, with the token before it in `_prev`."""
        prev, self._prev = self._prev, word
        if word in REFUSED_WORDS and (word in (b"PREPARE", b"EXECUTE") or assigns(buf, end)):
            raise self._refuse(REFUSED_WORDS[word])
        after = buf[match_end(GAP, buf, end, min(len(buf), end + HEAD)):][:3].upper()
        if (word in (b"NAMES", b"CHARSET") or (word == b"CHARACTER" and after == b"SET")) \
                and prev in (b"SET", b",", b"SESSION", b"LOCAL", b"GLOBAL"):
            raise self._refuse("sets the client character set outside a SET statement")
        if word in (b"DATABASE", b"SCHEMA") and prev in DB_VERBS:
            self._name_after(buf, end)
        elif word == b"FROM" and prev in DELETE_WORDS:
            self._prev = b"DELETE FROM"
        elif word == b"DEFINER" and prev in DEFINER_AFTER and assigns(buf, end):
            if (e := definer_end(buf, end)) < 0:
                raise self._refuse("names a DEFINER in a form the restore does not read")
            self._buf = buf[:end] + b"=CURRENT_USER" + buf[e:]  # the restore's account, the only one it may name

    def _qualifier(self, buf: bytes, end: int, name: bytes, prev: bytes) -> None:
        """Refuses `name` ending at `end` when, after `prev`, it qualifies a table (routine, trigger, event) by
        another database than the target (the first line of defence: the restore's account is the guarantee)."""
        if prev in QUALIFIED_AFTER and (what := other_database(buf, end, name, self.target)):
            raise self._refuse(f"names another database than the target ({what})")

    def _name_after(self, buf: bytes, p: int) -> None:
        """The database after USE/DATABASE at `p` becomes the target; the dump's one is kept, a second refused."""
        try:
            found = database_name(buf, p, self._delimiter)
        except ValueError as exc:
            raise self._refuse(str(exc)) from None
        if found is None:
            return
        s, raw = found
        name = (raw[1:-1].replace(b"``", b"`") if raw.startswith(b"`") else raw).decode(errors="replace")
        if name != self.target:
            if self._source and name != self._source:
                raise TransferError(
                    f"restore into database {self.target}: the dump holds more than one database ({self._source}, "
                    f"{name}); restore it into an AppBinding that names no database, or back up one database")
            self._source = name
        quoted = b"`" + self.target.encode().replace(b"`", b"``") + b"`"
        self._buf = buf[:s] + quoted + buf[s + len(raw):]
