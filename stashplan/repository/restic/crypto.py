"""restic's sealing: AES-256-CTR under a 16-byte random IV, authenticated by Poly1305-AES over the ciphertext.

A sealed object is `IV || CIPHERTEXT || MAC`. The MAC key is (k, r): the Poly1305 one-time key is
r (clamped) with s = AES-128_k(IV). Key files hold the master key sealed under scrypt(password).
Pure (no storage I/O); key material never appears in repr or messages.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from stashplan.errors import RepositoryError
from stashplan.repository.crypto import scrypt

IV_SIZE = 16
MAC_SIZE = 16
OVERHEAD = IV_SIZE + MAC_SIZE
MAX_SCRYPT_N = 1 << 22  # refuse absurd key-file parameters (memory) rather than trying them


class ResticCorrupt(RepositoryError):
    """restic data failed authentication or decoding: damaged, truncated, or not of this repository."""


class ResticWrongPassword(RepositoryError):
    """No key file of the restic repository opens with the given password."""


@dataclass(frozen=True)
class ResticKey:
    """An encryption key (AES-256) and a MAC key (AES-128 key k, Poly1305 key r)."""

    encrypt: bytes = field(repr=False)
    mac_k: bytes = field(repr=False)
    mac_r: bytes = field(repr=False)
    _aes_k: Any = field(init=False, repr=False, compare=False)  # AES-128_k in ECB mode

    def __post_init__(self) -> None:
        if len(self.encrypt) != 32 or len(self.mac_k) != 16 or len(self.mac_r) != 16:
            raise ResticCorrupt("restic key has wrong lengths (want 32-byte encrypt, 16-byte k and r)")
        c = _ciphers()
        object.__setattr__(self, "_aes_k", c.Cipher(c.algorithms.AES(self.mac_k), c.modes.ECB()))

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResticKey:
        """The 64 bytes scrypt derives: 32 encryption, then 16 k and 16 r for Poly1305-AES."""
        return cls(raw[:32], raw[32:48], raw[48:64])

    def _poly_key(self, iv: bytes | memoryview) -> bytes:
        enc = self._aes_k.encryptor()
        s = enc.update(bytes(iv)) + enc.finalize()
        return self.mac_r + s  # Poly1305 clamps r itself, as restic's mask does

    def mac(self, iv: bytes | memoryview, ciphertext: bytes | memoryview) -> bytes:
        from cryptography.hazmat.primitives.poly1305 import Poly1305

        return Poly1305.generate_tag(self._poly_key(iv), ciphertext)

    def open(self, sealed: bytes | bytearray | memoryview, what: str = "data") -> bytes:
        """The plaintext of `IV || CIPHERTEXT || MAC`; ResticCorrupt naming `what` if the MAC fails."""
        if len(sealed) < OVERHEAD:
            raise ResticCorrupt(f"{what} is corrupt (too short to be encrypted data)")
        view = memoryview(sealed)
        iv, body, tag = view[:IV_SIZE], view[IV_SIZE:-MAC_SIZE], view[-MAC_SIZE:]
        if not hmac.compare_digest(self.mac(iv, body), bytes(tag)):
            raise ResticCorrupt(f"{what} is corrupt (ciphertext verification failed)")
        c = _ciphers()
        dec = c.Cipher(c.algorithms.AES(self.encrypt), c.modes.CTR(bytes(iv))).decryptor()
        return dec.update(body) + dec.finalize()

    def seal(self, plaintext: bytes) -> bytes:
        """`IV || CIPHERTEXT || MAC` under a fresh random IV (used only for restic lock files)."""
        iv = os.urandom(IV_SIZE)
        c = _ciphers()
        enc = c.Cipher(c.algorithms.AES(self.encrypt), c.modes.CTR(iv)).encryptor()
        body = enc.update(plaintext) + enc.finalize()
        return iv + body + self.mac(iv, body)


def _ciphers() -> ModuleType:
    """cryptography's cipher module, imported on first use: after the key derivation, like `crypto._aesgcm`."""
    from cryptography.hazmat.primitives import ciphers

    return ciphers


def _b64(doc: dict, *path: str) -> bytes:
    value: object = doc
    for part in path:
        value = value[part] if isinstance(value, dict) else None
    if not isinstance(value, str):
        raise ResticCorrupt(f"restic master key: field {'.'.join(path)} is missing")
    return base64.b64decode(value)


def open_key_file(doc: dict, password: str, name: str = "key file") -> ResticKey:
    """The master key in a restic key file; ResticWrongPassword if `password` does not open it."""
    try:
        if doc.get("kdf") != "scrypt":
            raise ResticCorrupt(f"{name}: unsupported kdf {doc.get('kdf')!r} (restic uses scrypt)")
        n, r, p = int(doc["N"]), int(doc["r"]), int(doc["p"])
        salt = base64.b64decode(doc["salt"])
        sealed = base64.b64decode(doc["data"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ResticCorrupt(f"{name} is malformed: {exc}") from None
    if not (1 < n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= 64 and 0 < p <= 64):
        raise ResticCorrupt(f"{name}: scrypt parameters out of range (N={n}, r={r}, p={p})")
    derived = scrypt(password.encode(), salt, n, r, p, 64)
    user_key = ResticKey.from_bytes(derived)
    try:
        plain = user_key.open(sealed, what=name)
    except ResticCorrupt:
        raise ResticWrongPassword("wrong password") from None
    try:
        master = json.loads(plain)
        return ResticKey(_b64(master, "encrypt"), _b64(master, "mac", "k"), _b64(master, "mac", "r"))
    except ValueError as exc:
        raise ResticCorrupt(f"{name}: master key is malformed: {exc}") from None
