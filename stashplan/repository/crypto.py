"""Repository keys and sealing: a random master key wrapped by scrypt(password), AES-256-GCM, keyed chunk ids.

Pure (no storage I/O). Key material never appears in repr, logs or exception messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import blake3

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stashplan.errors import RepositoryError

NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
# scrypt lanes computed at once, on threads (pycryptodome's ROMix releases the GIL): two cut opening a repository
# from 0.5 to 0.3 s here. Each lane holds 128 * r * N bytes (32 MiB at the defaults) while it runs; lanes run one
# at a time when two would need more than KDF_MEMORY. A backup's peak RSS (~93 MiB at the defaults) stays within
# the dump pipe's 100 MiB budget because cryptography's 7 MiB are loaded only after the derivation (`_aesgcm`).
KDF_THREADS = 2
KDF_MEMORY = 64 * 1024 * 1024
IDS_HMAC_SHA256 = "hmac-sha256"  # format version 1
IDS_BLAKE3 = "blake3-keyed"  # format versions 2-3: one keyed BLAKE3 pass, ~3.5x cheaper than HMAC-SHA256 here
# Format version 4: the keyed BLAKE3 of the chunk's plain BLAKE3 digest. The digest is the only pass over the
# bytes: it also makes the stream checksum (over the digests) and lets a restore verify every chunk's id.
IDS_BLAKE3_DIGEST = "blake3-digest-keyed"
ID_ALGORITHMS = (IDS_HMAC_SHA256, IDS_BLAKE3, IDS_BLAKE3_DIGEST)
CHUNK_CHECKSUM = "blake3-chunks"  # the stream checksum of IDS_BLAKE3_DIGEST repositories: BLAKE3(d_1 || ... || d_n)
NAMES_SHA256 = "sha256"  # format versions 1-3: object names and the stream checksum
NAMES_BLAKE3 = "blake3"  # format version 4: the same hashes with BLAKE3, ~3x cheaper per byte here
NAME_ALGORITHMS = (NAMES_SHA256, NAMES_BLAKE3)


def chunk_digest(data: bytes | bytearray | memoryview) -> bytes:
    """The plain BLAKE3 digest of a chunk (format 4: its id is keyed from it, the stream checksum hashes them)."""
    return blake3.blake3(data, max_threads=1).digest()  # type: ignore[no-any-return]


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


def content_hasher(names: str) -> Hasher:
    """A fresh unkeyed hash of the repository's `names` algorithm (object names, stream checksums)."""
    if names == NAMES_BLAKE3:
        return blake3.blake3(max_threads=1)  # type: ignore[no-any-return]
    if names == NAMES_SHA256:
        return hashlib.sha256()
    raise RepositoryError(f"unknown object name hash {names!r}; this stashplan knows {', '.join(NAME_ALGORITHMS)}")


def checksum_hasher(algorithm: str) -> Hasher:
    """A fresh hasher for a snapshot's stream checksum `algorithm`; CHUNK_CHECKSUM is fed chunk digests,
    the others the stream's bytes."""
    return content_hasher(NAMES_BLAKE3 if algorithm == CHUNK_CHECKSUM else algorithm)


class CorruptData(RepositoryError):
    """Sealed data failed authentication: damaged, truncated or not written with this key."""


class WrongPassword(RepositoryError):
    """No key file of the repository opens with the given password."""


@dataclass(frozen=True)
class MasterKey:
    """The repository's secret: `encryption` for AES-256-GCM and `id_key` for keyed chunk ids, computed
    with the repository's `ids` algorithm; object names are hashed with its `names` algorithm (its config
    says which of each)."""

    encryption: bytes = field(repr=False)
    id_key: bytes = field(repr=False)
    ids: str = IDS_HMAC_SHA256
    names: str = NAMES_SHA256
    # Format versions 1 and 2 sealed documents without associated data; such repositories keep doing so.
    legacy: bool = field(default=False, compare=False)
    _aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.encryption) != 32 or len(self.id_key) != 32:
            raise ValueError("master key parts must be 32 bytes each")
        if self.ids not in ID_ALGORITHMS:
            raise RepositoryError(f"unknown chunk id algorithm {self.ids!r}; this stashplan knows {', '.join(ID_ALGORITHMS)}")
        content_hasher(self.names)  # refuses an unknown one
        object.__setattr__(self, "_aead", _aesgcm(self.encryption))

    def with_algorithms(self, ids: str, names: str) -> MasterKey:
        return replace(self, ids=ids, names=names)

    def object_id(self, data: bytes | bytearray | memoryview) -> str:
        """The hex name of a stored object (pack, index file, snapshot): its hash with `names`."""
        hasher = content_hasher(self.names)
        hasher.update(data)
        return hasher.hexdigest()

    def verify_name(self, data: bytes | bytearray | memoryview, object_id: str, what: str) -> None:
        """CorruptData unless the hash of an object's stored bytes is the id its name carries."""
        if self.object_id(data) != object_id:
            raise CorruptData(f"{what} is corrupt (its content does not match its name)")

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(32), os.urandom(32))

    @property
    def checksum_algorithm(self) -> str:
        """The stream checksum a backup records: over chunk digests (format 4), else the `names` hash."""
        return CHUNK_CHECKSUM if self.digests else self.names

    @property
    def digests(self) -> bool:
        """Whether ids are made from plain chunk digests (format 4), so one hash pass serves both."""
        return self.ids == IDS_BLAKE3_DIGEST

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        """The 32-byte keyed id of a plaintext chunk with `id_key`: keyed BLAKE3 of its digest (format 4),
        keyed BLAKE3 of the chunk (2-3) or HMAC-SHA256 (1)."""
        if self.ids == IDS_BLAKE3_DIGEST:
            return self.id_of_digest(chunk_digest(data))
        if self.ids == IDS_BLAKE3:
            return blake3.blake3(data, key=self.id_key, max_threads=1).digest()  # type: ignore[no-any-return]
        return hmac.digest(self.id_key, data, "sha256")

    def id_of_digest(self, digest: bytes) -> bytes:
        """The id of a chunk whose `chunk_digest` is `digest` (format 4 ids)."""
        return blake3.blake3(digest, key=self.id_key, max_threads=1).digest()  # type: ignore[no-any-return]

    def seal(self, plaintext: bytes | memoryview, aad: bytes = b"") -> bytearray:
        """nonce || AES-256-GCM(plaintext, aad) || tag, built in one buffer."""
        nonce = os.urandom(NONCE_SIZE)
        out = bytearray(NONCE_SIZE + len(plaintext) + TAG_SIZE)
        out[:NONCE_SIZE] = nonce
        self._aead.encrypt_into(nonce, plaintext, aad or None, memoryview(out)[NONCE_SIZE:])
        return out

    def open(self, sealed: bytes | bytearray | memoryview, aad: bytes = b"", what: str = "data") -> bytes:
        """The plaintext of `seal`'s output; CorruptData naming `what` if it fails authentication."""
        if len(sealed) < OVERHEAD:
            raise CorruptData(f"{what} is corrupt (too short)")
        view = memoryview(sealed)
        try:
            return self._aead.decrypt(view[:NONCE_SIZE], view[NONCE_SIZE:], aad or None)
        except _invalid_tag():
            raise CorruptData(f"{what} is corrupt (authentication failed)") from None

    def _doc_aad(self, kind: str) -> bytes:
        return b"" if self.legacy else b"stashplan-" + kind.encode()

    def seal_json(self, doc: object, kind: str) -> bytes:
        """A JSON document sealed with its type (`config`, `index`, `snapshot`) as associated data."""
        data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        return bytes(self.seal(data, self._doc_aad(kind)))

    def open_json(self, sealed: bytes, kind: str, what: str) -> dict:
        """The document sealed by `seal_json` with the same `kind`; CorruptData naming `what` otherwise."""
        try:
            doc = json.loads(self.open(sealed, self._doc_aad(kind), what=what))
        except ValueError as exc:
            raise CorruptData(f"{what} is corrupt (not JSON)") from exc
        if not isinstance(doc, dict):
            raise CorruptData(f"{what} is corrupt (not a JSON object)")
        return doc


def scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    """Standard scrypt (RFC 7914; the same bytes as `hashlib.scrypt`) by pycryptodome, whose ROMix runs about
    twice as fast as OpenSSL's here, so opening a repository waits half as long for the same work.
    Memory: 128 * r * N per lane computed at once (`kdf_threads`)."""
    from Crypto.Protocol.KDF import scrypt as pycryptodome_scrypt  # imported when a key is needed

    threads = kdf_threads(n, r)
    return pycryptodome_scrypt(password, salt, dklen, n, r, p, threads=threads)  # type: ignore[return-value]


def kdf_threads(n: int, r: int) -> int:
    """How many scrypt lanes to compute at once: KDF_THREADS when this process may use that many CPUs and their
    lanes fit in KDF_MEMORY, else 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    fits = max(1, KDF_MEMORY // (128 * r * n))
    return max(1, min(KDF_THREADS, cpus, fits))


def _aesgcm(key: bytes) -> AESGCM:
    """AES-256-GCM under `key`. cryptography is imported here, on first use: it is 7 MiB of native code, and a
    repository is opened (scrypt, `KDF_THREADS`) before anything is sealed or opened."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    """cryptography's authentication failure (evaluated only when an `except` clause meets an exception)."""
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def derive_kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """scrypt(password, salt, N, r, p) -> the 32-byte key that wraps a master key."""
    return scrypt(password.encode(), salt, n, r, p, 32)


def wrap_key(
    key: MasterKey, password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P
) -> dict:
    """A key-file document: scrypt parameters, salt, and the master key sealed by the derived key."""
    salt = os.urandom(32)
    kek = _aesgcm(derive_kek(password, salt, n, r, p))
    nonce = os.urandom(NONCE_SIZE)
    sealed = nonce + kek.encrypt(nonce, key.encryption + key.id_key, b"stashplan-master-key")
    return {
        "version": 1,
        "kdf": "scrypt",
        "N": n,
        "r": r,
        "p": p,
        "salt": base64.b64encode(salt).decode(),
        "data": base64.b64encode(sealed).decode(),
    }


def unwrap_key(doc: dict, password: str) -> MasterKey:
    """The master key in a key-file document; WrongPassword if `password` does not open it."""
    try:
        salt = base64.b64decode(doc["salt"])
        sealed = base64.b64decode(doc["data"])
        n, r, p = int(doc["N"]), int(doc["r"]), int(doc["p"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptData("key file is malformed") from exc
    kek = _aesgcm(derive_kek(password, salt, n, r, p))
    try:
        raw = kek.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], b"stashplan-master-key")
    except _invalid_tag():
        raise WrongPassword("wrong password") from None
    return MasterKey(raw[:32], raw[32:64])
