"""restic's "unpacked" files (config, index, snapshots, locks): sealed JSON, zstd-compressed in version 2.

The plaintext is JSON when it starts with `[` or `{`; a first byte 2 means zstd-compressed JSON follows.
Every file but `config` is named by the SHA-256 of its stored bytes, verified on read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
import zstandard

from providers.storage import Storage
from stashplan.repository.blobreader import TooLarge, decompress_capped
from stashplan.repository.restic.crypto import ResticCorrupt, ResticKey

MAX_UNPACKED = 1 << 30  # an index or snapshot file larger than this is not restic's
FETCHERS = 8  # small files (snapshots, index files) fetched at once: remote storage is latency-bound
T = TypeVar("T")
R = TypeVar("R")


def decode_unpacked(plain: bytes, what: str) -> Any:
    """The JSON document of a decrypted unpacked file (either encoding)."""
    if not plain:
        raise ResticCorrupt(f"{what} is corrupt (empty)")
    if plain[0] in b"[{":
        body = plain
    elif plain[0] == 2:
        try:
            body = decompress_capped(zstandard.ZstdDecompressor(), memoryview(plain)[1:], MAX_UNPACKED)
        except zstandard.ZstdError:
            raise ResticCorrupt(f"{what} is corrupt (bad zstd data)") from None
        except TooLarge as exc:
            raise ResticCorrupt(f"{what} is corrupt (its zstd data {exc}, more than restic writes)") from None
    else:
        raise ResticCorrupt(f"{what} has unknown encoding version {plain[0]}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ResticCorrupt(f"{what} is corrupt (not JSON)") from None


def load_unpacked(storage: Storage, key: ResticKey, name: str, what: str, *, verify_id: bool = True) -> Any:
    """Read, verify (id = SHA-256 of the stored bytes), decrypt and decode one unpacked file."""
    data = storage.get(name)
    file_id = name.rsplit("/", 1)[-1]
    if verify_id and hashlib.sha256(data).hexdigest() != file_id:
        raise ResticCorrupt(f"{what} is corrupt (its content does not match its id {file_id[:8]})")
    return decode_unpacked(key.open(data, what=what), what)


def load_object(storage: Storage, key: ResticKey, name: str, what: str) -> dict:
    doc = load_unpacked(storage, key, name, what)
    if not isinstance(doc, dict):
        raise ResticCorrupt(f"{what} is corrupt (not a JSON object)")
    return doc


def fetch_all(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`fn` over `items` on a few threads, results in order (the first error is raised)."""
    todo = list(items)
    if len(todo) < 2:
        return [fn(item) for item in todo]
    with ThreadPoolExecutor(min(FETCHERS, len(todo)), thread_name_prefix="stashplan-restic-get") as pool:
        return list(pool.map(fn, todo))
