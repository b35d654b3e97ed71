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
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from stashplan.errors import TransferError


@dataclass(frozen=True)
class ProcessSpec:
    """One child process: argv, extra environment (merged over os.environ), and a label for messages."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    label: str = ""

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


@dataclass(frozen=True)
class RestoreSpec:
    """The restore client process, an optional stream filter, and a hook run when the client ends."""

    spec: ProcessSpec
    make_filter: Callable[[], StreamFilter] | None = None
    finish: Callable[[bool], None] | None = None


@dataclass(frozen=True)
class Connection:
    """Where and as whom to connect, resolved from an AppBinding and its Secret."""

    scheme: str
    host: str
    port: int | None
    database: str  # from the URL/service path; "" = none selected
    query: Mapping[str, str]
    username: str
    password: str = field(repr=False)
    ca_file: Path | None = None
    path: str = ""  # raw URL path (sqlite file path)


@dataclass(frozen=True)
class TaskParams:
    """Stash's task params for a database step: `backupCMD` and `args` (split like a shell would)."""

    backup_cmd: str = ""
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, backup_cmd: str = "", args: str = "") -> TaskParams:
        try:
            parts = tuple(shlex.split(args or ""))
        except ValueError as exc:
            raise TransferError(f"task param args: {exc}") from None
        return cls(backup_cmd=(backup_cmd or "").strip(), args=parts)


class DatabaseProvider(Protocol):
    """One database engine. `connection` may write files (CA bundle) under `workdir`; the rest is pure."""

    name: str
    app_kind: str  # the app kind for metric labels, e.g. "Postgres"
    filename: str  # the snapshot's file name, e.g. "dumpfile.sql"

    def connection(self, appbinding: dict, secret: Mapping[str, str], workdir: Path) -> Connection: ...

    def probe(self, conn: Connection, params: TaskParams, *, restore: bool = False) -> Probe:
        """The readiness check before a dump, or before a restore when `restore` is set."""
        ...

    def dump(self, conn: Connection, params: TaskParams) -> ProcessSpec: ...

    def restore(self, conn: Connection, params: TaskParams) -> RestoreSpec: ...


def appbinding_name(appbinding: dict) -> str:
    meta = appbinding.get("metadata") or {}
    return f"AppBinding {meta.get('namespace', 'default')}/{meta.get('name', '?')}"


def resolve_connection(
    appbinding: dict,
    secret: Mapping[str, str],
    workdir: Path,
    *,
    default_port: int | None,
    user_keys: tuple[str, ...] = ("username",),
    password_keys: tuple[str, ...] = ("password",),
    default_user: str = "",
) -> Connection:
    """Connection from `spec.clientConfig.url` or `.service`, credentials from the Secret, caBundle to a file."""
    spec = appbinding.get("spec") or {}
    cc = spec.get("clientConfig") or {}
    where = appbinding_name(appbinding)
    if cc.get("url"):
        parts = urlsplit(str(cc["url"]))
        try:
            port = parts.port or default_port
        except ValueError:
            raise TransferError(f"{where}: spec.clientConfig.url has an invalid port") from None
        scheme, host, path, query = parts.scheme, parts.hostname or "", parts.path, parts.query
        url_user = unquote(parts.username or "")
    elif cc.get("service"):
        svc = cc["service"]
        if not svc.get("name"):
            raise TransferError(f"{where}: spec.clientConfig.service.name is required")
        scheme, host = str(svc.get("scheme") or ""), str(svc["name"])
        port = int(svc["port"]) if svc.get("port") else default_port
        path, query, url_user = str(svc.get("path") or ""), str(svc.get("query") or ""), ""
    else:
        raise TransferError(f"{where}: spec.clientConfig needs url or service")
    username = next((secret[k] for k in user_keys if secret.get(k)), "") or url_user or default_user
    password = next((secret[k] for k in password_keys if secret.get(k)), "")
    ca_file = None
    if cc.get("caBundle"):
        try:
            pem = base64.b64decode(str(cc["caBundle"]), validate=True)
        except binascii.Error:
            raise TransferError(f"{where}: spec.clientConfig.caBundle is not base64") from None
        workdir.mkdir(parents=True, exist_ok=True)
        ca_file = workdir / "ca.crt"
        ca_file.write_bytes(pem)
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
