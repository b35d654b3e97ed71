"""The Redis restore filter passes a backup's own stream through unchanged whatever the chunking (payloads stream,
options included), rewrites the dump's one SELECT to the target, and refuses anything else with one line."""

from __future__ import annotations

import pytest

from providers.databases.redis_confine import RedisConfine
from providers.databases.redis_stream import encode
from stashplan.errors import TransferError

STREAM = (encode("SELECT", 3) + encode("RESTORE", "k1", 0, b"\r\n\x00payload" * 1000, "REPLACE")
          + encode("RESTORE", b"k\r\n2", 5000, b"x", "REPLACE", "IDLETIME", 7, "ABSTTL"))


def _run(data: bytes, target: str, chunk: int) -> bytes:
    f = RedisConfine(target)
    return b"".join(f.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)) + f.flush()


@pytest.mark.parametrize("chunk", [1, 2, 7, 4096])
def test_a_backup_stream_passes_whatever_the_chunking(chunk: int) -> None:
    assert _run(STREAM, "", chunk) == STREAM
    assert _run(STREAM, "12", chunk) == encode("SELECT", 12) + STREAM[len(encode("SELECT", 3)):]


@pytest.mark.parametrize(("stream", "message"), [
    (STREAM + encode("SELECT", 4), r"more than one database \(3, 4\)"),
    (encode("RESTORE", "k", 0, b"x") + encode("SELECT", 3), "after writing keys"),
    (encode("CONFIG", "SET", "dir", "/tmp"), "the stream runs 'CONFIG'"),
    (encode("RESTORE", "k", 0, b"x", "REPLACE", "EVIL"), "RESTORE has the option 'EVIL'"),
    (b"PING\r\n", "an inline command"),
    (encode("RESTORE", "k", 0, b"x")[:-3], "ends inside a command"),
])
def test_anything_else_is_refused(stream: bytes, message: str) -> None:
    with pytest.raises(TransferError, match=f"^restore into redis database 12: .*{message}"):
        _run(stream, "12", 3)
