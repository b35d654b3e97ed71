"""The rolling read: every pack a backup may reuse is read in full at least once per window (default 7 days).

Packs fall in 256 groups by the first byte of their id (restic's `--read-data-subset n/256`). Group g has a
slot every window, at offset g/256 of a window: `run_rolling` (run before a transfer's backup)
reads every group whose latest slot passed since it was last read, so at any backup each group was read less
than a window ago, whatever the schedule (missed runs are caught up; a daily schedule reads about 1/7 of the
packs each time). When each group was last read is kept in the sealed object `verified`. A pack is read as bit
rot needs: its hash against its name, its header against the index and every blob's authentication (decompressing
and re-hashing each blob to its id, as `check --read-data` does, would cost seven times as much).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import zstandard

from providers.storage import ObjectNotFound, Storage, StorageError
from stashplan.errors import RepositoryError
from stashplan.repository.check import read_and_mark
from stashplan.repository.crypto import MasterKey
from stashplan.repository.index import load_index
from stashplan.repository.layout import DATA, pack_id_of

VERIFIED = "verified"
GROUPS = 256
DEFAULT_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class RollingResult:
    window: timedelta
    packs_read: int  # packs read in full now
    packs_total: int  # packs snapshots read from (the index's choice for each blob)
    groups_read: int  # of GROUPS
    damaged: list[str] = field(default_factory=list)  # packs found damaged now (marked)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def group_of(pack: str) -> int:
    return int(pack[:2], 16)


def due_groups(last_read: list[float], now: float, window: float) -> list[int]:
    """The groups whose latest slot (at or before `now`) is later than their last read."""
    if window <= 0:
        return list(range(GROUPS))
    due = []
    for group in range(GROUPS):
        offset = group * window / GROUPS
        slot = math.floor((now - offset) / window) * window + offset
        if last_read[group] < slot:
            due.append(group)
    return due


def load_state(storage: Storage, key: MasterKey, warn: Callable[[str], None]) -> list[float]:
    """When each group was last read (unix seconds; 0 = never, also when `verified` is missing or damaged)."""
    try:
        doc = key.open_json(storage.get(VERIFIED), "verified", "rolling read state `verified`")
        read = [float(t) for t in doc["read"]]
        if int(doc.get("groups", 0)) == GROUPS and len(read) == GROUPS:
            return read
        warn("rolling read state `verified` is malformed; every pack is read again")
    except ObjectNotFound:
        pass
    except StorageError as exc:  # a backend that holds only restic's object types (rest): no state is kept
        warn(f"{exc}; the rolling read keeps no state here, so every pack is read at every backup")
    except (RepositoryError, KeyError, TypeError, ValueError) as exc:
        warn(f"{exc}; every pack is read again")
    return [0.0] * GROUPS


def record(storage: Storage, key: MasterKey, groups: list[int], when: datetime, warn: Callable[[str], None]) -> None:
    """Record `groups` as read at `when`. Read-modify-write without a lock: a concurrent writer can only make
    a group look read earlier than it was (read again sooner), never read when it was not."""
    read = load_state(storage, key, warn)
    for group in groups:
        read[group] = max(read[group], when.timestamp())
    doc = {"version": 1, "groups": GROUPS, "read": [round(t, 3) for t in read]}
    try:
        storage.put(VERIFIED, key.seal_json(doc, "verified"))
    except StorageError:  # said by load_state: this backend keeps no state, every pack is read each time
        pass


def run_rolling(
    storage: Storage, key: MasterKey, now: datetime, window: timedelta, warn: Callable[[str], None]
) -> RollingResult:
    """Read the due groups' packs (under a shared lock), marking damaged ones; record the groups read."""
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}
    index = load_index(storage, key, stored=stored, warn=warn)
    packs = index.packs()
    candidates = sorted(p for p in packs if p in stored and p not in index.bad)
    due = due_groups(load_state(storage, key, warn), now.timestamp(), window.total_seconds())
    wanted = set(due)
    to_read = [p for p in candidates if group_of(p) in wanted]
    damaged: list[str] = []
    errors: list[str] = []
    dec = zstandard.ZstdDecompressor()
    for pack in to_read:
        problems, _good = read_and_mark(storage, key, pack, packs[pack], dec, full=False)
        if problems:
            damaged.append(pack)
            errors.extend(problems[:3])
    if due:
        record(storage, key, due, now, warn)
    return RollingResult(window, len(to_read), len(candidates), len(due), damaged, errors)
