"""Helpers for the storage emulator fixtures (tests/fixtures/): free loopback ports, the `.cache/` where
`.ci/services.sh` builds the emulators, and server processes on loopback stopped (only their group) afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cached_tool(relative: str) -> Path:
    """A tool `.ci/services.sh` installs under .cache/; a missing one fails the test with the fix."""
    path = CACHE / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make services` (it builds the storage emulators)")
    return path


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM when the test process dies, even killed (no orphaned emulators)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass(frozen=True)
class Server:
    """One server to start: argv, its port, its log file; `ready` defaults to the port answering."""

    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    cwd: Path | None = None


@contextmanager
def servers(*specs: Server, timeout: float = 90.0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start every server at once (each its own process group), wait until all are ready, stop them after."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for spec in specs:
            with open(spec.log, "wb") as out:
                procs.append(subprocess.Popen(spec.argv, stdout=out, stderr=subprocess.STDOUT,
                                              env={**os.environ, **spec.env}, cwd=spec.cwd, start_new_session=True,
                                              preexec_fn=_die_with_parent))
        deadline = time.monotonic() + timeout
        for spec, proc in zip(specs, procs, strict=True):
            check = spec.ready or (lambda p=spec.port: port_open(p))  # type: ignore[misc]
            while not check():
                if proc.poll() is not None:
                    pytest.fail(f"{spec.argv[0]} exited {proc.returncode}: {spec.log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{spec.argv[0]} did not answer on 127.0.0.1:{spec.port} in {timeout:.0f}s: "
                                f"{spec.log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def server(argv: list[str], port: int, log: Path, **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    """One server (see `servers`); `timeout` and Server's fields as keywords."""
    timeout = float(kw.pop("timeout", 90.0))
    with servers(Server(argv, port, log, **kw), timeout=timeout) as procs:
        yield procs[0]


class StorageTarget:
    """Where a backend's tests put a repository: Stash's `spec.backend` fragment and the Secret's keys."""

    def __init__(self, provider: str, make_spec: Callable[[str], dict], secret: dict[str, str]) -> None:
        self.provider = provider
        self._make_spec = make_spec
        self.secret = secret

    def backend(self, prefix: str) -> dict:
        """`{provider: {...}}` for a fresh place named by `prefix` (a prefix, or a URL path for rest)."""
        return {self.provider: self._make_spec(prefix)}

    def storage(self, prefix: str, secret: dict[str, str] | None = None) -> Any:
        """The RetryingStorage a Repository at `prefix` opens (with `secret` instead of the right one)."""
        return self.storage_at(self._make_spec(prefix), self.secret if secret is None else secret)

    def storage_at(self, spec: dict, secret: dict[str, str]) -> Any:
        from providers.storage import storage_from_repository

        repo = {"metadata": {"name": f"{self.provider}-repo"}, "spec": {"backend": {self.provider: spec}}}
        return storage_from_repository(repo, secret)
