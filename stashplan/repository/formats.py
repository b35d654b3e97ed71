"""Which repository format a storage holds: where restic keeps each kind of file, detecting a restic
repository, and the refusal of writes into one. Shared by the native repository (which refuses to write
there) and the restic reader beside it (which reads it), so neither imports the other's package.

The default layout (`keys/`, `snapshots/`, `index/`, `locks/`, `data/<2 hex>/<id>`) and the old S3
layout restic used on S3 before 0.7 (`key/`, `snapshot/`, `lock/`, `data/<id>`), both read-only here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError

CONFIG = "config"


@dataclass(frozen=True)
class ResticLayout:
    keys: str
    snapshots: str
    index: str
    locks: str
    legacy: bool  # the S3 legacy layout: singular names, packs directly under data/

    def pack(self, pack_id: str) -> str:
        return f"data/{pack_id}" if self.legacy else f"data/{pack_id[:2]}/{pack_id}"


DEFAULT = ResticLayout("keys/", "snapshots/", "index/", "locks/", legacy=False)
S3_LEGACY = ResticLayout("key/", "snapshot/", "index/", "lock/", legacy=True)


def _is_restic_key(storage: Storage, name: str) -> bool:
    """restic key files are plain JSON with scrypt parameters and a creation time; stashplan's carry a version."""
    try:
        doc = json.loads(storage.get(name))
    except (ObjectNotFound, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kdf") == "scrypt" and "version" not in doc and "created" in doc


def detect(storage: Storage) -> ResticLayout | None:
    """The restic layout of the repository in `storage`, or None when it is not a restic repository."""
    if not storage.exists(CONFIG):
        return None
    for layout in (DEFAULT, S3_LEGACY):
        for info in storage.list(layout.keys):
            return layout if _is_restic_key(storage, info.name) else None
    return None


def refusal(location: str, operation: str) -> RepositoryError:
    """The error for any write into a restic repository: stashplan reads that format, never writes it."""
    return RepositoryError(
        f"{location} is a restic repository (Stash's format), which stashplan only reads: {operation} is refused. "
        f"Copy its snapshots into a stashplan repository with `stashplan repo migrate --from {location} --to <repo>` "
        "and back up and apply retention there (or use restic itself on this one)"
    )
