r"""What a restore into one PostgreSQL database may run, statement by statement (lexed by `pg_lexer`): nothing that
reaches another database, the server's roles and settings or its operating system (COPY PROGRAM or a server file,
ALTER SYSTEM, roles, tablespaces, another database, dblink/foreign servers, server-file functions, DO blocks); each
refused in one line naming it. The first line of defence: code in functions the restore runs (triggers, defaults)
is beyond it, and a restore as a superuser runs as a role of its own (`pg_role`) for that."""

from __future__ import annotations

from collections.abc import Callable

from providers.databases.confine import PsqlConfine
from providers.databases.pg_lexer import IDENT, OP, QIDENT, STR, StatementLexer, Token
from stashplan.errors import TransferError

# Functions that read or write the server's files, reach other databases or servers, or act on other sessions.
DENIED_FUNCTIONS = frozenset({
    b"lo_import", b"lo_export", b"pg_read_file", b"pg_read_binary_file", b"pg_ls_dir", b"pg_stat_file",
    b"pg_ls_logdir", b"pg_ls_waldir", b"pg_ls_tmpdir", b"pg_ls_archive_statusdir", b"pg_ls_logicalsnapdir",
    b"pg_ls_logicalmapdir", b"pg_ls_replslotdir", b"pg_file_write", b"pg_file_sync", b"pg_file_rename",
    b"pg_file_unlink", b"pg_logdir_ls", b"pg_terminate_backend", b"pg_cancel_backend", b"pg_reload_conf",
    b"pg_rotate_logfile", b"pg_promote", b"pg_switch_wal", b"pg_create_restore_point", b"pg_backup_start",
    b"pg_backup_stop", b"pg_start_backup", b"pg_stop_backup", b"pg_drop_replication_slot",
    b"pg_create_physical_replication_slot", b"pg_create_logical_replication_slot", b"pg_copy_physical_replication_slot",
    b"pg_copy_logical_replication_slot", b"pg_replication_slot_advance", b"pg_replication_origin_create",
    b"pg_replication_origin_drop", b"pg_log_backend_memory_contexts", b"pg_wal_replay_pause", b"pg_wal_replay_resume",
    b"pg_stat_reset_shared", b"pg_stat_reset_slru", b"pg_stat_reset_replication_slot", b"query_to_xml",
    b"query_to_xmlschema", b"query_to_xml_and_xmlschema",
})
DENIED_EXTENSIONS = frozenset({b"dblink", b"postgres_fdw", b"adminpack", b"file_fdw"})
SERVER_WIDE = frozenset({b"role", b"user", b"group", b"tablespace", b"system", b"server", b"subscription"})
# set_config/SET of these would change who runs the rest, or how psql reads it
DENIED_SETTINGS = frozenset({b"role", b"session_authorization", b"client_encoding", b"standard_conforming_strings"})
# Client encodings whose multibyte characters may hold a byte that reads as a quote or backslash (psql's "unsafe")
UNSAFE_ENCODINGS = frozenset({b"sjis", b"shiftjis", b"mskanji", b"win932", b"windows932", b"shiftjis2004", b"big5",
                              b"win950", b"windows950", b"gbk", b"cp936", b"win936", b"windows936", b"uhc",
                              b"win949", b"windows949", b"gb18030", b"johab"})
_CALL_KEYWORDS = frozenset({  # SQL words a "(" may follow in a SELECT without a function call
    b"in", b"exists", b"any", b"all", b"some", b"array", b"row", b"values", b"not", b"and", b"or", b"as", b"cast",
    b"coalesce", b"nullif", b"greatest", b"least", b"select", b"from", b"where", b"on", b"using", b"when", b"then",
    b"else", b"case", b"lateral", b"join", b"by", b"having", b"union", b"intersect", b"except", b"over", b"filter",
    b"within", b"distinct", b"with", b"recursive", b"limit", b"offset", b"is", b"like", b"between", b"into"})
_MAX_SHOWN = 80


def _name(token: Token) -> str:
    return token[1].decode(errors="replace")


def _text(tokens: list[Token], count: int = 4) -> str:
    words = [('"' + _name(t) + '"' if t[0] == QIDENT else _name(t)) for t in tokens[:count] if t[0] != STR]
    return " ".join(words).upper()[:_MAX_SHOWN]


def _is(token: Token | None, *words: bytes) -> bool:
    return token is not None and token[0] == IDENT and token[1] in words


class PgTargetConfine:
    """A stream filter for a restore into database `target`: refuses what reaches beyond it; with `defer`, hands
    ownership and privilege statements (`ALTER ... OWNER TO`, GRANT, REVOKE, ALTER DEFAULT PRIVILEGES) to it
    instead of the stream, for the AppBinding's user to run after the data (the restore's role may not)."""

    def __init__(self, target: str, defer: Callable[[bytes], None] | None = None) -> None:
        self.target = target.encode()
        self._defer = defer
        self._lexer = StatementLexer(self._statement, PsqlConfine(target).feed)

    def feed(self, data: bytes) -> bytes:
        return self._lexer.feed(data)

    def flush(self) -> bytes:
        return self._lexer.flush()

    def _refuse(self, what: str, hint: str = "") -> TransferError:
        return TransferError(f"restore into database {self.target.decode(errors='replace')}: the dump runs {what}, "
                             f"which reaches beyond the target database; the restore is refused{hint}")

    def _statement(self, text: bytes, tokens: list[Token]) -> bytes:
        if not tokens:
            return text
        self.check(tokens)
        if self._defer is not None:
            lead = self._lexer.lead  # comments and pg_dump's \restrict line before the statement stay in the stream
            if _deferred(tokens):
                self._defer(text[lead:].strip() + b"\n")
                return text[:lead]
            if _is(tokens[0], b"set", b"reset") or _sets_config(tokens):  # what the deferred ones run under
                self._defer(text[lead:].strip() + b"\n")
        return text

    def check(self, t: list[Token]) -> None:
        """Raise TransferError for a statement that reaches beyond the target."""
        head = t[0][1] if t[0][0] == IDENT else b""
        if head == b"copy":
            self._copy(t)
        elif head in (b"alter", b"create", b"drop"):
            self._ddl(head, t)
        elif head in (b"grant", b"revoke"):
            self._grant(head, t)
        elif head in (b"comment", b"security"):
            self._comment(t)
        elif head in (b"set", b"reset"):
            self._set(t)
        elif head in (b"do", b"load", b"call", b"prepare", b"execute", b"import"):
            raise self._refuse(f"{_text(t, 3)} (pg_dump writes none)")
        elif head == b"reassign":
            raise self._refuse(_text(t, 3))
        self._calls(t, strict=head in (b"select", b"with", b"values"))

    def _copy(self, t: list[Token]) -> None:
        depth = 0
        for i, (kind, value) in enumerate(t):
            if kind == OP and value == b"(":
                depth += 1
            elif kind == OP and value == b")":
                depth = max(0, depth - 1)
            elif depth == 0 and kind == IDENT and value in (b"from", b"to") and i + 1 < len(t):
                where = t[i + 1]
                if _is(where, b"program"):
                    raise self._refuse(f"COPY ... {value.decode().upper()} PROGRAM (a command on the server)")
                if _is(where, b"stdin", b"stdout"):
                    return
                raise self._refuse(f"COPY ... {value.decode().upper()} {_text([where]) or 'a server file'} "
                                   "(only COPY ... FROM stdin and TO stdout may run)")

    def _ddl(self, head: bytes, t: list[Token]) -> None:
        words = [v for k, v in t[1:6] if k == IDENT]
        while words and words[0] in (b"or", b"replace", b"unique", b"temp", b"temporary", b"unlogged", b"trusted",
                                     b"procedural", b"global", b"local", b"if", b"not", b"exists"):
            words.pop(0)
        what = words[0] if words else b""
        if what == b"database":
            self._database(t, head)
        elif what in SERVER_WIDE:
            if what == b"subscription" and head == b"create" and self._no_connect(t):
                return
            if what == b"subscription" and head == b"alter" and any(_is(a, b"owner") for a in t):
                return
            raise self._refuse(_text(t, 3))
        elif what == b"foreign" and head == b"create":
            raise self._refuse(_text(t, 4))
        elif what == b"extension" and head == b"create":
            name = next((tok for tok in t[2:] if tok[0] in (IDENT, QIDENT) and tok[1] not in (b"if", b"not",
                                                                                             b"exists")), None)
            if name is not None and name[1].lower() in DENIED_EXTENSIONS:
                raise self._refuse(f"CREATE EXTENSION {_name(name)}")
        elif what == b"owned" or (what == b"schema" and head == b"create" and self._schema_elements(t)):
            raise self._refuse(_text(t, 3))

    def _no_connect(self, t: list[Token]) -> bool:
        """CREATE SUBSCRIPTION ... WITH (connect = false): pg_dump's form, which reaches no server."""
        return any(_is(a, b"connect") and b == (OP, b"=") and _is(c, b"false")
                   for a, b, c in zip(t, t[1:], t[2:], strict=False))

    def _schema_elements(self, t: list[Token]) -> bool:
        """CREATE SCHEMA with elements (GRANT ... ON DATABASE other among them); pg_dump writes the name alone."""
        return any(_is(tok, b"create", b"grant") for tok in t[1:])

    def _database(self, t: list[Token], head: bytes) -> None:
        i = next(i for i, tok in enumerate(t) if _is(tok, b"database"))
        name = t[i + 1] if i + 1 < len(t) else None
        if head == b"alter" and name is not None and self._names_target(name):
            lexing = [tok for tok in t if tok[0] in (IDENT, QIDENT) and tok[1].lower() in DENIED_SETTINGS]
            if lexing:
                raise self._refuse(f"ALTER DATABASE {_name(name)} SET {_name(lexing[0])} (it would change how the "
                                   "restore's later sessions read and who runs them)")
            return
        shown = _name(name) if name is not None else ""
        hint = "; restore it into an AppBinding that names no database, or back up with pg_dump without --create"
        raise self._refuse(f"{head.decode().upper()} DATABASE {shown}".strip(),
                           hint if head in (b"create", b"drop") else "")

    def _names_target(self, token: Token) -> bool:
        """Whether `token` names the target database (an unquoted name is folded to lower case)."""
        return token[0] in (IDENT, QIDENT) and token[1] == self.target

    def _grant(self, head: bytes, t: list[Token]) -> None:
        on = next((i for i, tok in enumerate(t) if _is(tok, b"on")), -1)
        if on < 0:
            raise self._refuse(f"{head.decode().upper()} of a role's membership ({_text(t, 6)})")
        kind = t[on + 1] if on + 1 < len(t) else None
        if _is(kind, b"database"):
            names = [tok for tok in t[on + 2:] if tok[0] in (IDENT, QIDENT)]
            stop = next((j for j, tok in enumerate(names) if _is(tok, b"to", b"from")), len(names))
            for name in names[:stop]:
                if not self._names_target(name):
                    raise self._refuse(f"{head.decode().upper()} ... ON DATABASE {_name(name)}")
        elif kind is not None and _is(kind, b"tablespace", b"parameter"):
            raise self._refuse(f"{head.decode().upper()} ... ON {_name(kind).upper()}")

    def _comment(self, t: list[Token]) -> None:
        on = next((i for i, tok in enumerate(t) if _is(tok, b"on")), -1)
        kind = t[on + 1] if 0 <= on < len(t) - 1 else None
        if _is(kind, b"database"):
            name = t[on + 2] if on + 2 < len(t) else (IDENT, b"")
            if not self._names_target(name):
                raise self._refuse(f"{_text(t[:1])} ON DATABASE {_name(name)}")
        elif kind is not None and _is(kind, b"role", b"tablespace"):
            raise self._refuse(f"{_text(t[:1])} ON {_name(kind).upper()}")

    def _set(self, t: list[Token]) -> None:
        if t[0][1] == b"reset" or len(t) < 2:
            return
        rest = t[1:]
        if _is(rest[0], b"session", b"local") and len(rest) > 1 and not _is(rest[1], b"authorization"):
            rest = rest[1:]
        if _is(rest[0], b"session") and len(rest) > 1 and _is(rest[1], b"authorization"):
            rest = [(IDENT, b"session_authorization"), *rest[2:]]
        setting = rest[0][1].lower()
        value = rest[1:]
        if value and value[0] in ((OP, b"="), (IDENT, b"to")):
            value = value[1:]
        if not value or _is(value[0], b"default", b"none"):
            return
        if setting == b"role":
            raise self._refuse(f"SET ROLE {_name(value[0])} (the restore runs as its own user)")
        if setting == b"session_authorization" and (self._defer is not None or value[0][0] != STR):
            raise self._refuse(f"SET SESSION AUTHORIZATION {_name(value[0])} (a restore into a named database runs "
                               "as a role of its own, which may not switch; back up without "
                               "--use-set-session-authorization)")
        if setting in (b"client_encoding", b"names") and _encoding(value[0][1]) in UNSAFE_ENCODINGS:
            raise self._refuse(f"SET client_encoding {_name(value[0])} (its characters can hide quotes and "
                               "backslashes)")

    def _calls(self, t: list[Token], *, strict: bool) -> None:
        """Denied functions anywhere; in a SELECT (pg_dump's call pg_catalog functions only) any other function."""
        for i in range(len(t) - 1):
            kind, name = t[i]
            if kind not in (IDENT, QIDENT) or t[i + 1] != (OP, b"("):
                continue
            low = name.lower() if kind == IDENT else name
            if low in DENIED_FUNCTIONS or low.startswith(b"dblink"):
                raise self._refuse(f"the function {_name(t[i])}()")
            if low == b"set_config":
                arg = t[i + 2] if i + 2 < len(t) else None
                if arg is None or arg[0] != STR or arg[1].lower() in DENIED_SETTINGS:
                    raise self._refuse(f"set_config({_name(arg) if arg else ''}...) (the restore's session "
                                       "settings stay its own)")
            qualified = i >= 2 and t[i - 1] == (OP, b".") and t[i - 2] in ((IDENT, b"pg_catalog"),
                                                                          (QIDENT, b"pg_catalog"))
            if strict and not qualified and low not in _CALL_KEYWORDS:
                raise self._refuse(f"SELECT {_name(t[i])}() (pg_dump's SELECTs call pg_catalog functions only)")


def _deferred(t: list[Token]) -> bool:
    """GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, and an ALTER whose one action is `OWNER TO role`."""
    if _is(t[0], b"grant", b"revoke") or (_is(t[0], b"alter") and len(t) > 1 and _is(t[1], b"default")):
        return True
    if not _is(t[0], b"alter") or len(t) < 4 or not (_is(t[-3], b"owner") and _is(t[-2], b"to")) \
            or t[-1][0] not in (IDENT, QIDENT):
        return False
    depth = 0
    for kind, value in t:
        if kind == OP and value in (b"(", b")"):
            depth += 1 if value == b"(" else -1
        elif kind == OP and value == b"," and depth == 0:
            return False  # more than one action
    return True


def _sets_config(t: list[Token]) -> bool:
    """pg_dump's `SELECT pg_catalog.set_config(...)`."""
    return _is(t[0], b"select") and len(t) > 4 and t[1:5] == [(IDENT, b"pg_catalog"), (OP, b"."),
                                                              (IDENT, b"set_config"), (OP, b"(")]


def _encoding(name: bytes) -> bytes:
    """An encoding name as PostgreSQL compares them: letters and digits only, lower case."""
    return bytes(c for c in name.lower() if chr(c).isalnum())
