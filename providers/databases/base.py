"""The seam between the transfer and a database: connection from an AppBinding, readiness, dump and restore.

A provider turns an AppBinding + decoded Secret + task params into process specs (argv + env). Passwords
travel only in `ProcessSpec.env`; argv, reprs and error messages never hold them.
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

from providers.databases.endpoint import appbinding_name, endpoint
from providers.databases.options import ToolOptions
from stashplan.errors import TransferError


@dataclass(frozen=True)
class ProcessSpec:
    """One child process: argv, extra environment (merged over os.environ), and a label for messages."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    label: str = ""
    # Its stderr tail -> the one-line error to report instead of it, when the process failed for a known reason.
    explain: Callable[[str], str | None] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.label or Path(self.argv[0]).name

    def full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


@dataclass(frozen=True)
class Probe:
    """A readiness check run until it succeeds: exit 0 (and `expect` in stdout when given).

    Output containing one of `fatal` ends the wait at once (e.g. a wrong password never gets better).
    """

    spec: ProcessSpec
    expect: str = ""
    fatal: tuple[str, ...] = ()


class StreamFilter(Protocol):
    """Rewrites a byte stream on its way to the restore client; `flush` returns what is held back."""

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class Splitter(Protocol):
    """Cuts a dump into the events of `providers.databases.pg_parallel` (`feed`, then `flush` at its end)."""

    note: str  # why the restore went (partly) serial, if it did
    table_bytes: dict[str, int]

    def feed(self, data: bytes) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


class ConfineFilter(StreamFilter, Protocol):
    """A worker's stream filter that says whether it holds an unfinished statement back."""

    @property
    def holding(self) -> bool: ...


@dataclass(frozen=True)
class ParallelClients:
    """A restore over `jobs` connections, each a `worker` client reading its stdin (PostgreSQL: a plain dump cut
    by `providers.databases.pg_parallel`); used instead of `RestoreSpec.spec` and its filter when set."""

    worker: ProcessSpec
    jobs: int
    check_meta: Callable[[bytes], None] | None = None  # raises TransferError for a meta-command line it refuses
    make_filter: Callable[[], StreamFilter] | None = None  # rewrites the dump before it is cut into units
    make_splitter: Callable[[], Splitter] | None = None  # cuts the dump into units; None: a plain pg_dump's cutter
    worker_filter: Callable[[], ConfineFilter] | None = None  # one per connection: what it runs passes it
    unit_padding: int = 0  # newlines after each unit's end marker (a worker filter's lookahead; MySQL: 4096)


@dataclass(frozen=True)
class RestoreSpec:
    """The restore client process, an optional stream filter, a hook run before the client starts (e.g. to
    create the account it connects as) and one run when it ends, whatever happened (`finish(ok)`)."""

    spec: ProcessSpec
    make_filter: Callable[[], StreamFilter] | None = None
    finish: Callable[[bool], None] | None = None
    start: Callable[[], None] | None = None
    parallel: ParallelClients | None = None


@dataclass(frozen=True)
class ClientTLS:
    """A TLS client certificate from an AppBinding's `spec.tlsSecret` (kubernetes.io/tls keys `tls.crt`,
    `tls.key`, optional `ca.crt`), as PEM text. Never printed: every field is left out of repr."""

    cert: str = field(repr=False)
    key: str = field(repr=False)
    ca: str = field(default="", repr=False)


@dataclass(frozen=True)
class Connection:
    """Where and as whom to connect, resolved from an AppBinding and its Secret (+ its tlsSecret)."""

    scheme: str
    host: str
    port: int | None
    database: str  # from the URL/service path; "" = none selected
    query: Mapping[str, str]
    username: str
    password: str = field(repr=False)
    ca_file: Path | None = None  # caBundle, else the tlsSecret's ca.crt
    path: str = ""  # raw URL path (sqlite file path)
    cert_file: Path | None = None  # the tlsSecret's client certificate (tls.crt)
    key_file: Path | None = None  # its private key (tls.key), mode 0600


MULTI_DUMP_SEPARATOR = "$args="


@dataclass(frozen=True)
class TaskParams:
    """Stash's task params for a database step: `backupCMD`, `args` (split like a shell would) and
    `multiDumpArgs` (MySQL/MariaDB: split on `$args=`, one dump per non-empty part)."""

    backup_cmd: str = ""
    args: tuple[str, ...] = ()
    multi_dump_args: tuple[tuple[str, ...], ...] = ()
    jobs: int = 1  # restore connections (PostgreSQL or MySQL, one database); 1 = one client

    @classmethod
    def parse(cls, backup_cmd: str = "", args: str = "", multi_dump_args: str = "") -> TaskParams:
        try:
            parts = tuple(shlex.split(args or ""))
        except ValueError as exc:
            raise TransferError(f"task param args: {exc}") from None
        dumps: list[tuple[str, ...]] = []
        for i, chunk in enumerate((multi_dump_args or "").split(MULTI_DUMP_SEPARATOR)):
            try:
                words = tuple(shlex.split(chunk))
            except ValueError as exc:
                raise TransferError(f"task param multiDumpArgs, part {i}: {exc}") from None
            if words:
                dumps.append(words)
        return cls(backup_cmd=(backup_cmd or "").strip(), args=parts, multi_dump_args=tuple(dumps))


class DatabaseProvider(Protocol):
    """One database engine. `connection` may write files (CA bundle, client certificate and key, mode
    0600) under `workdir`, a private directory that lives as long as the transfer; the rest is pure.
    A provider that cannot use a client certificate raises TransferError when `tls` is given."""

    name: str
    app_kind: str  # the app kind for metric labels, e.g. "Postgres"
    filename: str  # the snapshot's file name, e.g. "dumpfile.sql"
    empty_dump_ok: bool  # whether a dump of zero bytes is a valid backup (else the backup fails)
    backup_tools: tuple[str, ...]  # the names `backupCMD` may select, resolved on PATH
    restore_tool: str  # the client a restore runs
    options: dict[str, ToolOptions]  # per tool: the options `args` may carry

    def dump_tool(self, conn_database: str, params: TaskParams) -> str:
        """The dump tool these params select (TransferError for a `backupCMD` that is not a tool name)."""
        ...

    def connection(
        self, appbinding: dict, secret: Mapping[str, str], workdir: Path, tls: ClientTLS | None = None
    ) -> Connection: ...

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        """The readiness check before a dump, or before a restore when `restore` is set."""
        ...

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec: ...

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec: ...


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path` readable by its owner only (0600 from the first byte); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(data)
    return path


def resolve_connection(
    appbinding: dict,
    secret: Mapping[str, str],
    workdir: Path,
    *,
    default_port: int | None,
    user_keys: tuple[str, ...] = ("username",),
    password_keys: tuple[str, ...] = ("password",),
    default_user: str = "",
    tls: ClientTLS | None = None,
) -> Connection:
    """Connection from `spec.clientConfig.url` and/or `.service` (`providers.databases.endpoint` says which wins
    when both are set), credentials from the Secret; caBundle and the client certificate, key and CA of `tls`
    become files in `workdir` (caBundle wins over `tls.ca`)."""
    cc = (appbinding.get("spec") or {}).get("clientConfig") or {}
    where = appbinding_name(appbinding)
    at = endpoint(appbinding)
    scheme, host, path, query, url_user = at.scheme, at.host, at.path, at.query, at.user
    port = at.port or default_port
    username = next((secret[k] for k in user_keys if secret.get(k)), "") or url_user or default_user
    password = next((secret[k] for k in password_keys if secret.get(k)), "")
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    if cc.get("caBundle"):
        try:
            pem = base64.b64decode(str(cc["caBundle"]), validate=True)
        except binascii.Error:
            raise TransferError(f"{where}: spec.clientConfig.caBundle is not base64") from None
        ca_file = write_private(workdir / "ca.crt", pem)
    if tls is not None:
        if not tls.cert or not tls.key:
            raise TransferError(f"{where}: spec.tlsSecret needs both tls.crt and tls.key")
        cert_file = write_private(workdir / "tls.crt", tls.cert.encode())
        key_file = write_private(workdir / "tls.key", tls.key.encode())
        if tls.ca and ca_file is None:
            ca_file = write_private(workdir / "ca.crt", tls.ca.encode())
    return Connection(
        scheme=scheme,
        host=host,
        port=port,
        database=unquote(path.strip("/")),
        query=dict(parse_qsl(query)),
        username=username,
        password=password,
        ca_file=ca_file,
        path=unquote(path),
        cert_file=cert_file,
        key_file=key_file,
    )


def wait_ready(probe: Probe, timeout: float, *, interval: float = 1.0, what: str = "database") -> None:
    """Run the probe until it passes; TransferError with the last output when `timeout` s pass."""
    deadline = time.monotonic() + max(timeout, 0.0)
    last = ""
    while True:
        remaining = deadline - time.monotonic()
        try:
            done = subprocess.run(
                probe.spec.argv,
                env=probe.spec.full_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=max(1.0, min(10.0, remaining)),
                check=False,
            )
        except subprocess.TimeoutExpired:
            last = f"{probe.spec.name} did not answer"
        except OSError as exc:
            raise TransferError(
                f"{what} readiness check: cannot run {probe.spec.name}: {exc.strerror}"
            ) from None
        else:
            out = done.stdout.decode(errors="replace")
            text = (out + done.stderr.decode(errors="replace")).strip()
            if done.returncode == 0 and (not probe.expect or probe.expect in out):
                return
            last = text.splitlines()[-1] if text else f"{probe.spec.name} exited with {done.returncode}"
            if any(f in text for f in probe.fatal):
                raise TransferError(f"{what} is not usable: {last}")
        if time.monotonic() + interval > deadline:
            raise TransferError(f"{what} not ready within {timeout:g}s: {last}")
        time.sleep(interval)
