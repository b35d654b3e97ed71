r"""`--one-database DB` for a mariadb/mysql restore, done by stashplan: the client runs with `--binary-mode`, in
which it no longer follows `USE`, so its own `--one-database` filters nothing. This stream filter reads the dump
with the restore filter's lexer (`providers.databases.mysql_confine`) and keeps only what runs while DB is the
current database (DB to begin with, as the client's default database), SET statements always, as the client does.
"""

from __future__ import annotations

import secrets

from providers.databases.base import StreamFilter
from providers.databases.mysql_confine import MySQLConfine
from providers.databases.mysql_lexemes import (
    DB_VERBS,
    GAP,
    HEAD,
    REFUSED_WORDS,
    SET_MAX,
    WORD,
    assigns,
    match_end,
)
from providers.databases.mysql_names import database_name
from providers.databases.mysql_session import Session
from stashplan.errors import TransferError

_UNDECIDED_AFTER = {*DB_VERBS, b"OR"}  # CREATE [OR REPLACE] / DROP / ALTER: DATABASE x may follow


class _Session(Session):
    def __init__(self, database: str, key: str) -> None:
        super().__init__(database, key)

    def _refuse(self, what: str) -> TransferError:
        return TransferError(f"restore with --one-database {self.target}: {what}; restore without --one-database")


class OneDatabase(MySQLConfine):
    """A restore stream filter that drops every client batch (the text up to the client's delimiter) that runs
    while another database than `database` is current, the `USE` of another database itself, and
    `CREATE`/`DROP`/`ALTER DATABASE` of another one (which mysqldump writes before its `USE`, where the client's
    own --one-database would still run them). Delimiter lines, comments and whitespace between batches pass."""

    def __init__(self, database: str) -> None:
        super().__init__(database)
        self._session = _Session(database, "stashplan_" + secrets.token_hex(8))
        self._current = database  # the database the dump is in, as far as its USE statements say
        self._in_batch = False  # a statement began since the client's last delimiter
        self._fate: bool | None = None  # keep (True) or drop (False) the current batch; None: not known yet
        self._from: int | None = None  # where the current batch's bytes begin in the buffer (held or dropped)
        self._cuts: list[tuple[int, int]] = []  # dropped batches, in buffer offsets
        self._pending = b""  # bytes of a batch not known yet, lexed in an earlier feed
        self._ready = b""  # such bytes of a batch since kept: the next output begins with them
        self._used: str | None = None  # the name a USE statement names

    def _refuse(self, what: str) -> TransferError:
        return TransferError(f"restore with --one-database {self.target}: the dump {what}; restore without "
                             "--one-database")

    # --- the lexer's hooks ---

    def _statement_start(self, buf: bytes, i: int, final: bool) -> int | None:
        new = not self._in_batch
        self._used = None
        r = super()._statement_start(buf, i, final)
        if r is not None and not self._stmt_start:  # a statement began at i
            m = WORD.match(buf, i)
            word = (m.group() if m else b"").split(self._delimiter, 1)[0].upper()
            self._began(i, word, new)
        return r

    def _comment_open(self, buf: bytes, j: int, final: bool) -> int | None:
        r = super()._comment_open(buf, j, final)
        if r is not None and self._in_exec and not self._in_batch and self._from is None:
            self._from = j  # a statement may begin inside it: hold it until that statement's fate is known
        return r

    def _boundary(self, buf: bytes, j: int, *, client: bool) -> int:
        if self._in_batch and self._fate is None:
            self._settle(True)  # CREATE/DROP/ALTER of something else than another database
        end = super()._boundary(buf, j, client=client)
        if client:
            if self._in_batch and self._fate is False and self._from is not None:
                self._cuts.append((self._from, end))
            elif not self._in_batch:
                self._release()  # an executable comment without a statement: it goes out as it is
            self._in_batch, self._fate, self._from = False, None, None
        return end

    def _name_after(self, buf: bytes, p: int) -> None:
        self._used = self._database_at(buf, p)

    def _qualifier(self, buf: bytes, end: int, name: bytes, prev: bytes) -> None:
        return None  # a kept statement runs as the client would run it

    def _word(self, buf: bytes, end: int, word: bytes) -> None:
        prev, self._prev = self._prev, word
        if word in (b"SQL_MODE", b"CHARACTER_SET_CLIENT") and assigns(buf, end):
            raise self._refuse(REFUSED_WORDS[word])
        after = buf[match_end(GAP, buf, end, min(len(buf), end + HEAD)):][:3].upper()
        if (word in (b"NAMES", b"CHARSET") or (word == b"CHARACTER" and after == b"SET")) \
                and prev in (b"SET", b",", b"SESSION", b"LOCAL", b"GLOBAL"):
            raise self._refuse("sets the client character set outside a SET statement")
        if word in (b"DATABASE", b"SCHEMA") and prev in DB_VERBS:
            name = self._database_at(buf, end)
            other = name is not None and name != self.target
            if self._fate is None:
                self._settle(not other)
            elif self._fate and other:
                raise self._refuse(f"names database {name} in a batch of statements of {self.target}")
        elif self._fate is None and word not in _UNDECIDED_AFTER:
            self._settle(True)

    def _emit(self, buf: bytes, i: int, final: bool) -> bytes:
        if final:
            if self._in_batch and self._fate is None:
                self._settle(True)
            if not self._in_batch:
                self._release()
        out = super()._emit(buf, i, final)
        keep, pieces, last, rest = len(out), [], 0, []
        for start, end in self._cuts:  # the buffer's first `keep` bytes went out: cut them there, shift the rest
            if start >= keep:
                rest.append((start - keep, end - keep))
                continue
            pieces.append(out[last:start])
            last = min(end, keep)
            if end > keep:
                rest.append((0, end - keep))
        self._cuts = rest
        if self._from is not None and self._from < keep:
            pieces.append(out[last:self._from])
            if self._fate is None:
                self._pending += out[self._from:]
                if len(self._pending) > SET_MAX:
                    raise self._refuse(f"has a statement whose database is not known within {SET_MAX} bytes")
            self._from = 0
        else:
            pieces.append(out[last:])
            if self._from is not None:
                self._from -= keep
        text, self._ready = self._ready + b"".join(pieces), b""
        return text

    # --- the batches ---

    def _began(self, i: int, word: bytes, new: bool) -> None:
        """A statement (its first word `word`) began at `i`: the first of a client batch decides the batch."""
        if word == b"USE" and self._used is not None:
            self._current = self._used
            if not new and self._fate is not None and self._fate != (self._used == self.target):
                raise self._refuse(f"switches to database {self._used} inside a batch of statements of another "
                                   "database")
        if not new:
            return
        self._in_batch = True
        if self._from is None:
            self._from = i
        if word == b"SET":
            self._settle(True)  # session settings, as the client runs them whatever the database
        elif self._current != self.target:
            self._settle(False)
        elif word in (b"CREATE", b"DROP", b"ALTER"):
            self._fate = None  # decided by the words that follow
        else:
            self._settle(True)

    def _settle(self, keep: bool) -> None:
        self._fate = keep
        if keep:
            self._release()
        else:
            self._pending = b""

    def _release(self) -> None:
        """The held batch goes out: its bytes of earlier feeds first (they precede the whole buffer)."""
        self._from = None
        self._ready, self._pending = self._ready + self._pending, b""

    def _database_at(self, buf: bytes, p: int) -> str | None:
        try:
            found = database_name(buf, p, self._delimiter)
        except ValueError as exc:
            raise self._refuse(str(exc)) from None
        if found is None:
            return None
        raw = found[1]
        return (raw[1:-1].replace(b"``", b"`") if raw.startswith(b"`") else raw).decode(errors="replace")


class Chained:
    """Two stream filters, one after the other."""

    def __init__(self, first: StreamFilter, second: StreamFilter) -> None:
        self._first, self._second = first, second

    def feed(self, data: bytes) -> bytes:
        return self._second.feed(self._first.feed(data))

    def flush(self) -> bytes:
        return self._second.feed(self._first.flush()) + self._second.flush()
