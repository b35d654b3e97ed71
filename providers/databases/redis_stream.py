"""Redis dump helper process: a point-in-time RDB turned into a RESTORE command stream on stdout.

Run as `python -m providers.databases.redis_stream --db N|all -- <redis-cli connection args>`
(password in REDISCLI_AUTH). It fetches a consistent RDB with `redis-cli --rdb` (the server forks a
snapshot), loads it into a private `redis-server` on a unix socket in a temp dir (no TCP port), and
writes `[SELECT n] RESTORE key pttl payload REPLACE` commands in the Redis protocol, which
`redis-cli --pipe` replays into any running server. Needs `redis-server` of the same or newer version.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

Reply = bytes | int | list["Reply"] | None


class RespError(Exception):
    """An error reply from the server."""


def encode(*parts: bytes | str | int) -> bytes:
    """One command in the Redis protocol (RESP array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        b = p if isinstance(p, bytes) else str(p).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespClient:
    """A minimal blocking RESP client over a unix socket, enough for SELECT/SCAN/PTTL/DUMP."""

    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._file = self._sock.makefile("rb")

    def call(self, *parts: bytes | str | int) -> Reply:
        self._sock.sendall(encode(*parts))
        return self._read()

    def _read(self) -> Reply:
        line = self._file.readline()
        if not line:
            raise ConnectionError("redis-server closed the connection")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body
        if kind == b"-":
            raise RespError(body.decode(errors="replace"))
        if kind == b":":
            return int(body)
        if kind == b"$":
            n = int(body)
            if n < 0:
                return None
            data = self._file.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(body)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError(f"unexpected reply type {kind!r}")

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def keyspace_dbs(client: RespClient) -> list[int]:
    info = client.call("INFO", "keyspace")
    assert isinstance(info, bytes)
    return sorted(int(line.split(b":")[0][2:]) for line in info.splitlines() if line.startswith(b"db"))


def write_db(client: RespClient, db: int, out: BinaryIO, *, select: bool) -> int:
    """Write RESTORE commands for every key of `db`; returns the number of keys written."""
    client.call("SELECT", db)
    if select:
        out.write(encode("SELECT", db))
    cursor, count = b"0", 0
    while True:
        reply = client.call("SCAN", cursor, "COUNT", 1000)
        assert isinstance(reply, list) and isinstance(reply[0], bytes) and isinstance(reply[1], list)
        cursor = reply[0]
        for key in reply[1]:
            assert isinstance(key, bytes)
            ttl = client.call("PTTL", key)
            payload = client.call("DUMP", key)
            if payload is None or not isinstance(ttl, int) or ttl == -2:
                continue
            assert isinstance(payload, bytes)
            out.write(encode("RESTORE", key, max(ttl, 0), payload, "REPLACE"))
            count += 1
        if cursor == b"0":
            return count


def start_private_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = str(workdir / "redis.sock")
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--unixsocket",
            sock,
            "--dir",
            str(workdir),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(workdir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (workdir / "redis.log").read_text(errors="replace").strip().splitlines()
            raise RuntimeError(
                f"private redis-server could not load the RDB: {log[-1] if log else proc.returncode}"
            )
        try:
            client = RespClient(sock)
            try:
                client.call("PING")
                return proc, sock
            except RespError:  # LOADING
                pass
            finally:
                client.close()
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("private redis-server did not start")


def run(db: str, cli_args: Sequence[str], out: BinaryIO) -> int:
    with tempfile.TemporaryDirectory(prefix="stashplan-redis-") as tmp:
        workdir = Path(tmp)
        fetched = subprocess.run(
            ["redis-cli", *cli_args, "--rdb", str(workdir / "dump.rdb")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if fetched.returncode != 0 or not (workdir / "dump.rdb").exists():
            msg = fetched.stderr.decode(errors="replace").strip().splitlines()
            print(f"redis-cli --rdb failed: {msg[-1] if msg else fetched.returncode}", file=sys.stderr)
            return 1
        proc, sock = start_private_server(workdir)
        try:
            client = RespClient(sock)
            if db == "all":
                for n in keyspace_dbs(client):
                    write_db(client, n, out, select=True)
            else:
                write_db(client, int(db), out, select=False)
            client.close()
        finally:
            proc.kill()
            proc.wait()
    out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="redis_stream", description=__doc__)
    parser.add_argument(
        "--db", default="all", help="database number to dump, or 'all' (with SELECT commands)"
    )
    parser.add_argument("cli_args", nargs="*", help="redis-cli connection arguments, after --")
    ns = parser.parse_args(argv)
    try:
        return run(ns.db, ns.cli_args, sys.stdout.buffer)
    except (RuntimeError, RespError, OSError) as exc:
        print(f"redis dump failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
