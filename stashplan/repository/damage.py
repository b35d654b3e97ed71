"""Packs found damaged by a read: a `damaged/<pack id>` marker per pack, honoured by its name alone. A backup
never deduplicates against a marked pack (its blobs are stored again) and readers prefer other copies of its
blobs; `repair packs` salvages it and prune or repair remove the marker with the pack."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from providers.storage import IncompleteListing, ObjectNotFound, Storage, StorageError
from stashplan.repository.crypto import MasterKey
from stashplan.repository.layout import pack_id_of

DAMAGED = "damaged/"
_PACK_ID = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger(__name__)


def marked_packs(storage: Storage) -> set[str]:
    """The ids of every pack a read found damaged (one listing of `damaged/`; none on a backend that holds only
    restic's object types, such as rest: there a damaged pack is reported by the read that finds it and the
    session fails, but no marker keeps later backups from reusing it)."""
    try:
        infos = storage.list(DAMAGED)
    except IncompleteListing:
        raise
    except StorageError:
        return set()
    return {pid for info in infos if _PACK_ID.fullmatch(pid := pack_id_of(info.name))}


def usable(storage: Storage, stored: Mapping[str, int]) -> dict[str, int]:
    """`stored` (pack id -> length) without the packs marked damaged: what may be deduplicated against."""
    marked = marked_packs(storage)
    return {pack: size for pack, size in stored.items() if pack not in marked}


def mark_damaged(storage: Storage, key: MasterKey, pack: str, reason: str) -> bool:
    """Record that a read of `pack` failed authentication or its checksum. The marker is a small sealed
    document (time and reason, for people); its name is what counts. Never raises: a repository that cannot
    be written (a `--no-lock` restore of a read-only mount) just goes without it (logged)."""
    doc = {"version": 1, "pack": pack, "time": datetime.now(UTC).isoformat(), "reason": reason[:500]}
    try:
        storage.put(DAMAGED + pack, key.seal_json(doc, "damaged"))
    except (StorageError, OSError) as exc:
        log.warning("pack %s is damaged, but could not be marked so: %s", pack, exc)
        return False
    log.warning("pack %s is damaged (%s); marked %s%s: backups store its data again", pack, reason, DAMAGED, pack)
    return True


def clear_markers(storage: Storage, stored: Iterable[str]) -> list[str]:
    """Delete the markers of packs that are no longer stored (deleted by prune or repair); their names."""
    keep = set(stored)
    removed = []
    for pack in sorted(marked_packs(storage) - keep):
        try:
            storage.delete(DAMAGED + pack)
        except ObjectNotFound:
            continue
        removed.append(pack)
    return removed


class Marker:
    """Marks each pack at most once per reader (thread-safe): what a restore or check calls on a bad blob."""

    def __init__(self, storage: Storage, key: MasterKey) -> None:
        self.storage = storage
        self.key = key
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, pack: str, reason: str) -> None:
        with self._lock:
            if pack in self._done:
                return
            self._done.add(pack)
        mark_damaged(self.storage, self.key, pack, reason)
