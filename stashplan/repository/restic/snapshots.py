"""restic snapshot files (`snapshots/<id>`): time, root tree, paths, host, tags; finding one by id or latest."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository.formats import ResticLayout
from stashplan.repository.restic.crypto import ResticKey
from stashplan.repository.restic.files import fetch_all, load_object


@dataclass(frozen=True)
class ResticSnapshot:
    id: str
    time: datetime
    tree: bytes
    paths: tuple[str, ...]
    hostname: str
    username: str
    tags: tuple[str, ...]
    end_time: datetime | None  # summary.backup_end (restic >= 0.17)
    total_bytes: int | None  # summary.total_bytes_processed (restic >= 0.17)
    data_added: int

    @property
    def short_id(self) -> str:
        return self.id[:8]


def parse_time(value: str) -> datetime:
    """An RFC 3339 time as Go writes it (nanoseconds are cut to microseconds), in UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def decode(snapshot_id: str, doc: dict) -> ResticSnapshot:
    try:
        summary = doc.get("summary") or {}
        end = summary.get("backup_end")
        total = summary.get("total_bytes_processed")
        return ResticSnapshot(
            id=snapshot_id,
            time=parse_time(str(doc["time"])),
            tree=bytes.fromhex(doc["tree"]),
            paths=tuple(str(p) for p in doc.get("paths") or ()),
            hostname=str(doc.get("hostname") or ""),
            username=str(doc.get("username") or ""),
            tags=tuple(str(t) for t in doc.get("tags") or ()),
            end_time=parse_time(str(end)) if end else None,
            total_bytes=int(total) if total is not None else None,
            data_added=int(summary.get("data_added") or 0),
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RepositoryError(f"snapshot {snapshot_id[:8]} is malformed: {exc}") from None


def snapshot_ids(storage: Storage, layout: ResticLayout) -> list[str]:
    return sorted(i.name.rsplit("/", 1)[-1] for i in storage.list(layout.snapshots))


def load_snapshot(storage: Storage, key: ResticKey, layout: ResticLayout, snapshot_id: str) -> ResticSnapshot:
    name = layout.snapshots + snapshot_id
    return decode(snapshot_id, load_object(storage, key, name, f"snapshot {snapshot_id[:8]}"))


def load_all(
    storage: Storage, key: ResticKey, layout: ResticLayout, ids: Sequence[str] | None = None
) -> list[ResticSnapshot]:
    """Every snapshot (or those of `ids`), oldest first."""
    wanted = snapshot_ids(storage, layout) if ids is None else ids
    snaps = fetch_all(lambda sid: load_snapshot(storage, key, layout, sid), wanted)
    return sorted(snaps, key=lambda s: (s.time, s.id))


def id_prefix(ref: str) -> str | None:
    """The snapshot id prefix `ref` names (an id, a prefix, Stash's `<repository>-<short id>`), None for latest."""
    wanted = ref.lower()
    if wanted in ("latest", ""):
        return None
    stash_name = re.fullmatch(r".+-([0-9a-f]{8})", wanted)
    if stash_name and not re.fullmatch(r"[0-9a-f]+", wanted):
        return stash_name.group(1)
    return wanted


def select(snaps: Sequence[ResticSnapshot], ref: str, hostname: str | None, location: str) -> ResticSnapshot:
    """The snapshot named by id, unique id prefix, Stash's `<repository>-<short id>`, or "latest" (newest,
    of `hostname` when given)."""
    if ref in ("latest", ""):
        candidates = [s for s in snaps if hostname is None or s.hostname == hostname]
        if not candidates:
            host = f" of host {hostname}" if hostname else ""
            raise RepositoryError(f"no snapshot{host} in {location}")
        return candidates[-1]
    wanted = id_prefix(ref) or ""
    found = [s for s in snaps if s.id.startswith(wanted)]
    if not found:
        raise RepositoryError(f"snapshot {ref} not found in {location}")
    if len(found) > 1:
        raise RepositoryError(f"snapshot id prefix {ref} is ambiguous ({len(found)} snapshots match)")
    return found[0]
