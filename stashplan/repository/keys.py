"""Key files: the master key wrapped by each password, found by trying them, added, listed, removed.

A key file is plain JSON named `keys/<SHA-256 of its bytes>` (checked on read). It records the id of
the repository it was made for, so keys left by an interrupted `init` are recognised and removed by
the init that completes. Its scrypt cost is calibrated when it is written (`calibrated_kdf`).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import (
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    CorruptData,
    MasterKey,
    WrongPassword,
    derive_kek,
    unwrap_key,
    wrap_key,
)
from stashplan.repository.layout import KEYS

# restic calibrates scrypt to 0.5 s of its (Go) scrypt. pycryptodome's, which we call (`crypto.scrypt`), does
# a lane in about 0.05 s of CPU here, faster than restic's, so 0.5 s of CPU, rounded up, keeps our keys' work at
# or above what restic chooses.
CALIBRATION_TARGET = 0.5  # seconds of CPU per derivation
MAX_P = 64
Warn = Callable[[str], None]


@dataclass(frozen=True)
class KeyInfo:
    name: str  # keys/<id>
    id: str
    repo_id: str
    hostname: str
    username: str
    created: str
    kdf: str  # "scrypt N=32768 r=8 p=4"


def calibrated_kdf(target: float | None = None) -> tuple[int, int, int]:
    """scrypt (N, r, p) costing about `target` seconds of CPU here: N and r fixed (32 MiB), p scaled up.

    Measured in this thread's CPU time (the better of two derivations), so other load on the machine
    does not make the keys weaker."""
    target = CALIBRATION_TARGET if target is None else target
    samples = []
    for _ in range(2):
        start = time.thread_time()
        derive_kek("calibration", os.urandom(32), SCRYPT_N, SCRYPT_R, SCRYPT_P)
        samples.append(time.thread_time() - start)
    once = max(min(samples), 1e-4)
    return SCRYPT_N, SCRYPT_R, max(SCRYPT_P, min(MAX_P, math.ceil(target / once)))


def key_doc(key: MasterKey, password: str, repo_id: str, kdf: tuple[int, int, int] | None = None) -> dict:
    """A key-file document for `password`, with who made it and for which repository."""
    n, r, p = kdf or calibrated_kdf()
    doc = wrap_key(key, password, n=n, r=r, p=p)
    created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return {**doc, "repo_id": repo_id, "hostname": socket.gethostname(), "username": user, "created": created}


def store_key(storage: Storage, doc: dict) -> str:
    """Write a key file; returns its object name."""
    data = json.dumps(doc, sort_keys=True).encode()
    name = KEYS + hashlib.sha256(data).hexdigest()
    storage.put(name, data)
    return name


def read_keys(storage: Storage, warn: Warn) -> list[tuple[str, dict]]:
    """Every readable key file (name, document); a damaged one is skipped with a warning."""
    out = []
    for info in sorted(storage.list(KEYS), key=lambda i: i.name):
        try:
            data = storage.get(info.name)
        except ObjectNotFound:
            continue
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError:
            warn(f"key file {info.name} is corrupt (not JSON); skipped")
            continue
        key_id = info.name[len(KEYS) :]
        # Files written before key names were checked are named by the SHA-256 of the sorted JSON.
        if key_id not in (
            hashlib.sha256(data).hexdigest(),
            hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest(),
        ):
            warn(f"key file {info.name} is corrupt (its content does not match its name); skipped")
            continue
        out.append((info.name, doc))
    return out


def describe(name: str, doc: dict) -> KeyInfo:
    kdf = f"{doc.get('kdf', '?')} N={doc.get('N')} r={doc.get('r')} p={doc.get('p')}"
    return KeyInfo(
        name,
        name[len(KEYS) :],
        str(doc.get("repo_id", "")),
        str(doc.get("hostname", "")),
        str(doc.get("username", "")),
        str(doc.get("created", "")),
        kdf,
    )


def find_master_key(
    storage: Storage,
    password: str,
    fits: Callable[[MasterKey], bool],
    warn: Warn,
) -> tuple[MasterKey, str]:
    """The master key (and its key file) that `password` unwraps and that `fits` the config.

    A key that opens with the password but not the config (left by an interrupted init) is passed
    over. WrongPassword when no key file opens with the password.
    """
    opened_any = False
    for name, doc in read_keys(storage, warn):
        try:
            key = unwrap_key(doc, password)
        except WrongPassword:
            continue
        except CorruptData as exc:
            warn(f"key file {name}: {exc}; skipped")
            continue
        opened_any = True
        if fits(key):
            return key, name
    if opened_any:
        raise RepositoryError(
            f"repository config at {storage.location} is corrupt (authentication failed with every key "
            "this password opens)"
        )
    raise WrongPassword(f"wrong password for repository {storage.location}")


def remove_strays(storage: Storage, repo_id: str, warn: Warn) -> list[str]:
    """Delete key files made for another repository id (left by interrupted or losing inits)."""
    removed = []
    for name, doc in read_keys(storage, warn):
        if doc.get("repo_id") and doc["repo_id"] != repo_id:
            try:
                storage.delete(name)
            except ObjectNotFound:
                continue
            removed.append(name)
    return removed
