"""Objects bound to their names (the `wal/` prefix, written by `stashplan pg`): a small JSON header and a body,
zstd-compressed and sealed with the object's name as associated data, so an object copied under another
name fails authentication. Not packs: prune never deletes them, and check reads them with --read-data.
"""

from __future__ import annotations

import json
import struct

import blake3
import zstandard

from providers.storage import ObjectNotFound, Storage
from stashplan.repository.crypto import CorruptData, MasterKey

NAMED_PREFIXES = ("wal/",)  # prefixes whose objects are named objects (docs/repository-format.md)
_AAD = b"stashplan-named:"
_HEADER_LEN = struct.Struct("<I")


def seal_named(key: MasterKey, name: str, header: dict, body: bytes, level: int) -> bytes:
    """`seal(zstd(u32le(len(header json)) || header json || body), aad = "stashplan-named:" + name)`; the header
    gets the body's `size` and `blake3` added."""
    doc = json.dumps(
        {**header, "size": len(body), "blake3": blake3.blake3(body).hexdigest()},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    plain = _HEADER_LEN.pack(len(doc)) + doc + body
    return bytes(key.seal(zstandard.ZstdCompressor(level=level).compress(plain), _AAD + name.encode()))


def open_named(key: MasterKey, name: str, data: bytes) -> tuple[dict, bytes]:
    """(header, body) of a named object; CorruptData naming it when it fails authentication, does not
    decompress, or its body's size or BLAKE3 differs from its header."""
    what = f"object {name}"
    plain = key.open(data, _AAD + name.encode(), what=what)
    try:
        raw = zstandard.ZstdDecompressor().decompress(plain)
        (length,) = _HEADER_LEN.unpack_from(raw)
        header = json.loads(raw[_HEADER_LEN.size : _HEADER_LEN.size + length])
        body = raw[_HEADER_LEN.size + length :]
    except (zstandard.ZstdError, struct.error, ValueError):
        raise CorruptData(f"{what} is corrupt (bad zstd data or header)") from None
    if (
        not isinstance(header, dict)
        or header.get("size") != len(body)
        or header.get("blake3") != blake3.blake3(body).hexdigest()
    ):
        raise CorruptData(f"{what} is corrupt (its content does not match its header)")
    return header, body


def check_named(storage: Storage, key: MasterKey, *, read_data: bool) -> tuple[int, list[str]]:
    """How many named objects there are, and (with `read_data`) the problems found opening each."""
    count = 0
    errors: list[str] = []
    for prefix in NAMED_PREFIXES:
        for info in storage.list(prefix):
            count += 1
            if not read_data:
                continue
            try:
                open_named(key, info.name, storage.get(info.name))
            except ObjectNotFound:
                continue
            except CorruptData as exc:
                errors.append(str(exc))
    return count, errors
