"""The account a MariaDB/MySQL restore into a named database runs as: created just before the client starts with
ALL PRIVILEGES on that database and nothing else, removed when the restore ends (kept locked while restored
triggers, views, routines or events name it as their definer); a later restore removes stale ones."""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence

from stashplan.errors import TransferError

PREFIX = "stashplan_r_"  # every account a restore creates: stashplan_r_<unix time, hex>_<random>
STALE_AFTER = 3600.0  # seconds after which an account with no connection is a leftover (a killed restore's)
_LIKE = "'stashplan\\_r\\_%'"
_NAME = re.compile(r"stashplan_r_([0-9a-f]{1,12})_[0-9a-f]{8}")
_ERROR = re.compile(r"ERROR (\d+)(?: \([0-9A-Z]+\))?(?: at line \d+)?: (.*)")
_DENIED = {"1044", "1045", "1142", "1227", "1410"}  # access denied, not allowed to create a user with GRANT
_DEFINED = ("TRIGGERS", "ROUTINES", "VIEWS", "EVENTS")
log = logging.getLogger(__name__)


def _literal(text: str) -> str:
    if "'" in text or "\\" in text:
        raise TransferError(f"restore account: {text!r} cannot be written as an SQL string")
    return f"'{text}'"


def grant_pattern(database: str) -> str:
    """The database of a GRANT as a quoted pattern that matches it alone (`_` and `%` are wildcards there)."""
    escaped = re.sub(r"([\\_%])", r"\\\1", database).replace("`", "``")
    return f"`{escaped}`"


class RestoreAccount:
    """`start` creates the account (after removing stale ones), `finish` removes or locks it; the client
    connects as `name` with `password` (random, never on argv). SQL runs through `client` as the AppBinding's
    user (`admin_args` and `admin_env`), its text on stdin."""

    def __init__(self, client: str, admin_args: Sequence[str], admin_env: Mapping[str, str], admin_user: str,
                 database: str, *, tls: bool = False) -> None:
        self.name = f"{PREFIX}{int(time.time()):x}_{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(24)
        self.database = database
        self._argv = (client, *admin_args, "--batch", "--skip-column-names", "--connect-timeout=10")
        self._env = dict(admin_env)
        self._admin = admin_user
        self._host = ""  # the account's host, once created
        self._require = " REQUIRE SSL" if tls else ""  # as the AppBinding's connection, over TLS only

    def _run(self, sql: str) -> tuple[list[list[str]], str]:
        """Rows of the statements' output, or the server's error ("code: message") when one failed."""
        try:
            done = subprocess.run(self._argv, input=sql.encode(), capture_output=True, timeout=60, check=False,
                                  env={**os.environ, **self._env})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [], f"{self._argv[0]}: {exc}"
        if done.returncode != 0:
            text = done.stderr.decode(errors="replace").replace(self.password, "***").strip()
            m = _ERROR.search(text)
            return [], f"{m.group(1)}: {m.group(2)}" if m else (text.splitlines() or ["failed"])[-1]
        return [line.split("\t") for line in done.stdout.decode(errors="replace").splitlines()], ""

    def _fail(self, what: str, error: str) -> TransferError:
        return TransferError(f"restore into database {self.database}: {what} ({error.split(': ', 1)[-1]})")

    def start(self) -> None:
        rows, error = self._run("SELECT SUBSTRING_INDEX(USER(), '@', -1);")
        if error:
            raise self._fail("cannot ask the server who this client is", error)
        host = rows[0][0] if rows and rows[0] else ""
        self._remove_stale()
        account = f"{_literal(self.name)}@{_literal(host)}"
        _, error = self._run(f"CREATE USER {account} IDENTIFIED BY {_literal(self.password)}{self._require};")
        if error:
            if error.split(":", 1)[0] in _DENIED:
                raise self._fail(
                    f"the AppBinding's user {self._admin} lacks the CREATE USER privilege, which a restore into a "
                    "named database needs to run as an account limited to that database; grant it (GRANT CREATE "
                    "USER ON *.* TO the user) or restore with an AppBinding that names no database", error)
            raise self._fail("cannot create the restore's account", error)
        self._host = host
        _, error = self._run(f"GRANT ALL PRIVILEGES ON {grant_pattern(self.database)}.* TO {account};")
        if error:
            self._host = ""
            self._drop(account)
            if error.split(":", 1)[0] in _DENIED:
                raise self._fail(
                    f"the AppBinding's user {self._admin} lacks ALL PRIVILEGES WITH GRANT OPTION on "
                    f"{grant_pattern(self.database)}.*, which a restore into a named database needs to give an "
                    "account limited to that database; grant it or restore with an AppBinding that names no database",
                    error)
            raise self._fail("cannot grant the restore's account its database", error)

    def finish(self, ok: bool) -> None:
        """Removes the account, whatever the restore's outcome; after a restore that succeeded, one that
        restored objects name as their definer is kept locked instead (`_release`)."""
        if self._host:
            host, self._host = self._host, ""
            if ok:
                self._release(self.name, host)
            else:
                self._drop(f"{_literal(self.name)}@{_literal(host)}")

    def _release(self, user: str, host: str) -> None:
        """Drops the account; one that restored objects name as their definer is locked instead (its password
        replaced by one nobody knows), so that they keep running with its privileges, on one database only."""
        account = f"{_literal(user)}@{_literal(host)}"
        if not self._defines(f"{user}@{host}"):
            self._drop(account)
            return
        _, error = self._run(f"ALTER USER {account} IDENTIFIED BY {_literal(secrets.token_urlsafe(24))} "
                             "ACCOUNT LOCK;")
        if error:
            log.warning("restore into database %s: cannot lock account %s: %s", self.database, account, error)
        else:
            log.info("restore into database %s: account %s is kept, locked: restored objects name it as their "
                     "definer", self.database, account)

    def _drop(self, account: str) -> None:
        _, error = self._run(f"DROP USER IF EXISTS {account};")
        if error:
            log.warning("restore into database %s: cannot remove account %s (a later restore removes it): %s",
                        self.database, account, error)

    def _defines(self, definer: str) -> bool:
        """Whether a trigger, routine, view or event names `definer` (yes when the server cannot tell)."""
        union = " UNION ALL ".join(f"SELECT 1 FROM information_schema.{t} WHERE DEFINER = {_literal(definer)}"
                                   for t in _DEFINED)
        rows, error = self._run(f"SELECT COUNT(*) FROM ({union}) AS d;")
        return bool(error) or not rows or rows[0][0] != "0"

    def _remove_stale(self) -> None:
        """Accounts of restores that ended without removing theirs (killed): older than STALE_AFTER, with no
        connection, and granted this database or none (the definers of another database's objects are left to
        restores into it, which can see them). Best effort: a user that cannot read mysql.user leaves them."""
        pattern = grant_pattern(self.database)[1:-1].replace("``", "`").encode().hex()
        mine = "SELECT 1 FROM mysql.db d WHERE d.User = u.User AND d.Host = u.Host"
        rows, error = self._run(
            f"SELECT u.User, u.Host, (SELECT COUNT(*) FROM information_schema.PROCESSLIST p WHERE p.USER = u.User) "
            f"FROM mysql.user u WHERE u.User LIKE {_LIKE} AND (EXISTS ({mine} AND d.Db = X'{pattern}') "
            f"OR NOT EXISTS ({mine}));")
        if error:
            log.debug("restore account: cannot list stale accounts: %s", error)
            return
        now = time.time()
        for row in rows:
            if len(row) != 3 or not (m := _NAME.fullmatch(row[0])) or row[2] != "0" \
                    or now - int(m.group(1), 16) < STALE_AFTER or "'" in row[1] or "\\" in row[1]:
                continue
            self._release(row[0], row[1])
