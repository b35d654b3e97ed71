"""The role a PostgreSQL restore into a named database runs as when the AppBinding's user is a superuser: created by
`start` (LOGIN, no other attribute, member of no role; CONNECT, CREATE and TEMP on the target and CREATE on its
public schema), its ownership and privilege statements run after the data by the AppBinding's user, and removed by
`finish` whatever the outcome (what it still owns goes to that user); a later restore removes stale ones."""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence

from stashplan.errors import TransferError

PREFIX = "stashplan_r_"  # every role a restore creates: stashplan_r_<unix time, hex>_<random>
STALE_AFTER = 3600.0  # seconds after which a role with no session is a leftover (a killed restore's)
_NAME = re.compile(r"stashplan_r_([0-9a-f]{1,12})_[0-9a-f]{8}")
_ERROR = re.compile(r"(?:ERROR|FATAL):\s+(.*)")
log = logging.getLogger(__name__)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RestoreRole:
    """`env` is the restore clients' environment (PGUSER and PGPASSWORD): the AppBinding's user until `start`
    finds it a superuser and creates the role, whose name and random password it then holds (never on argv).
    SQL runs through psql as the AppBinding's user (`admin_args`, `admin_env`), its text on stdin."""

    def __init__(self, admin_args: Sequence[str], admin_env: Mapping[str, str], admin_user: str,
                 database: str) -> None:
        self.name = f"{PREFIX}{int(time.time()):x}_{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(24)
        self.database = database
        self.env: dict[str, str] = {**admin_env, "PGUSER": admin_user}
        self.deferred: list[bytes] = []  # statements the AppBinding's user runs after the data, in order
        self.active = False
        self._argv = ("psql", *admin_args, f"--username={admin_user}", "--no-psqlrc", "--quiet", "--no-align",
                      "--tuples-only", "--set=ON_ERROR_STOP=1")
        self._admin_env = {**admin_env}

    def defer(self, statement: bytes) -> None:
        self.deferred.append(statement)

    def _run(self, sql: bytes, *, database: str, one_transaction: bool = False) -> tuple[list[str], str]:
        """Output lines, or the server's error (one line) when a statement failed."""
        argv = [*self._argv, *(["--single-transaction"] if one_transaction else []), f"--dbname={database}"]
        try:
            done = subprocess.run(argv, input=sql, capture_output=True, timeout=300, check=False,
                                  env={**os.environ, **self._admin_env})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [], f"psql: {exc}"
        if done.returncode != 0:
            text = done.stderr.decode(errors="replace").replace(self.password, "***")
            m = _ERROR.search(text)
            return [], m.group(1).strip() if m else (text.strip().splitlines() or ["failed"])[-1]
        return done.stdout.decode(errors="replace").splitlines(), ""

    def _fail(self, what: str, error: str) -> TransferError:
        return TransferError(f"restore into database {self.database}: {what} ({error})")

    def start(self) -> None:
        rows, error = self._run(b"SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;",
                                database=self.database)
        if error:
            raise self._fail("cannot ask the server who this client is", error)
        if rows[:1] != ["t"]:
            return  # not a superuser: the restore runs as the AppBinding's user, within what it may do
        self._remove_stale()
        role, db = ident(self.name), ident(self.database)
        password = "'" + self.password.replace("'", "''") + "'"
        _, error = self._run(
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT "
            f"PASSWORD {password};\nGRANT CONNECT, CREATE, TEMPORARY ON DATABASE {db} TO {role};\n"
            f"DO $$BEGIN IF to_regnamespace('public') IS NOT NULL THEN "
            f"EXECUTE 'GRANT USAGE, CREATE ON SCHEMA public TO {role}'; END IF; END$$;\n".encode(),
            database=self.database, one_transaction=True)
        if error:
            raise self._fail("cannot create the restore's role", error)
        self.active = True
        self.env.update(PGUSER=self.name, PGPASSWORD=self.password)

    def finish(self, ok: bool) -> None:
        """After a restore that succeeded, the deferred statements (one transaction, as the AppBinding's user);
        then, whatever happened, the role's objects go to that user and the role is dropped."""
        if not self.active:
            return
        self.active = False
        error = ""
        try:
            if ok and self.deferred:
                # read as the filter read them: its settings first, then the dump's own (deferred in order)
                _, error = self._run(b"SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n"
                                     + b"".join(self.deferred), database=self.database, one_transaction=True)
        finally:
            self._drop(self.name)
        if error:
            raise self._fail("the data is restored, but setting its owners and privileges failed", error)

    def _drop(self, name: str) -> None:
        role = ident(name)
        _, error = self._run(f"REASSIGN OWNED BY {role} TO CURRENT_USER;\nDROP OWNED BY {role};\n"
                             f"DROP ROLE {role};\n".encode(), database=self.database, one_transaction=True)
        if not error:
            return
        log.warning("restore into database %s: cannot remove role %s (%s); it is kept without login", self.database,
                    name, error)
        _, error = self._run(f"ALTER ROLE {role} NOLOGIN PASSWORD NULL;".encode(), database=self.database)
        if error:
            log.warning("restore into database %s: cannot lock role %s: %s", self.database, name, error)

    def _remove_stale(self) -> None:
        """Roles of restores that ended without removing theirs (killed): older than STALE_AFTER, with no session."""
        rows, error = self._run(
            b"SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'stashplan\\_r\\_%' AND NOT EXISTS "
            b"(SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.usename = r.rolname);", database=self.database)
        if error:
            log.debug("restore role: cannot list stale roles: %s", error)
            return
        now = time.time()
        for name in rows:
            m = _NAME.fullmatch(name)
            if m and now - int(m.group(1), 16) >= STALE_AFTER:
                self._drop(name)
