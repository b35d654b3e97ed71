"""Snapshot manifests: the sealed JSON written last by a backup, and finding snapshots by id, host and tag.

A manifest holds the metadata below plus `content`: the ids of the list blobs that, concatenated,
give the stream's chunk ids in order. Its object name is `snapshots/<SHA-256 of the stored bytes>`,
checked on every read; a manifest that cannot be read is skipped with a warning naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.storage import ObjectNotFound, Storage
from stashplan.errors import RepositoryError
from stashplan.repository.crypto import CHUNK_CHECKSUM, NAME_ALGORITHMS, MasterKey
from stashplan.repository.layout import DOC_VERSION, SNAPSHOTS


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: datetime
    end_time: datetime
    hostname: str
    tags: tuple[str, ...]
    source: str
    filename: str
    total_size: int  # plaintext bytes of the stream
    added_size: int  # bytes uploaded by this backup, after dedup and compression
    checksum: str  # "<algorithm>:<hex>" of the whole plaintext stream (blake3; sha256 before format 4)


@dataclass(frozen=True)
class Manifest:
    snapshot: Snapshot
    content: tuple[bytes, ...]  # list blob ids
    chunk_count: int


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _checksum_field(checksum: str) -> dict[str, str]:
    algorithm, _, digest = checksum.partition(":")
    return {algorithm: digest}


def _checksum(doc: dict) -> str:
    for algorithm in (*NAME_ALGORITHMS, CHUNK_CHECKSUM):
        if algorithm in doc:
            return f"{algorithm}:{doc[algorithm]}"
    raise KeyError("sha256")


def encode(snapshot: Snapshot, content: Sequence[bytes], chunk_count: int) -> dict:
    return {
        "version": DOC_VERSION,
        "time": _ts(snapshot.time),
        "end_time": _ts(snapshot.end_time),
        "hostname": snapshot.hostname,
        "tags": list(snapshot.tags),
        "source": snapshot.source,
        "filename": snapshot.filename,
        "total_size": snapshot.total_size,
        "added_size": snapshot.added_size,
        **_checksum_field(snapshot.checksum),
        "chunk_count": chunk_count,
        "content": [c.hex() for c in content],
    }


def decode(snapshot_id: str, doc: dict) -> Manifest:
    try:
        snap = Snapshot(
            id=snapshot_id,
            short_id=snapshot_id[:8],
            time=_parse_ts(doc["time"]),
            end_time=_parse_ts(doc["end_time"]),
            hostname=str(doc["hostname"]),
            tags=tuple(doc.get("tags") or ()),
            source=str(doc.get("source", "")),
            filename=str(doc.get("filename", "")),
            total_size=int(doc["total_size"]),
            added_size=int(doc.get("added_size", 0)),
            checksum=_checksum(doc),
        )
        return Manifest(snap, tuple(bytes.fromhex(c) for c in doc["content"]), int(doc["chunk_count"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise RepositoryError(f"snapshot {snapshot_id[:8]} is malformed: {exc}") from exc


def write_manifest(storage: Storage, key: MasterKey, doc: dict) -> str:
    """Store a manifest document; returns the snapshot id."""
    data = key.seal_json(doc, "snapshot")
    snapshot_id = key.object_id(data)
    storage.put(SNAPSHOTS + snapshot_id, data)
    return snapshot_id


def load_manifest(storage: Storage, key: MasterKey, snapshot_id: str) -> Manifest:
    """One manifest, checked against its name; RepositoryError naming the snapshot if it is damaged."""
    data = storage.get(SNAPSHOTS + snapshot_id)
    what = f"snapshot {snapshot_id[:8]} ({SNAPSHOTS}{snapshot_id})"
    key.verify_name(data, snapshot_id, what)
    return decode(snapshot_id, key.open_json(data, "snapshot", what))


def list_ids(storage: Storage) -> list[str]:
    return sorted(info.name[len(SNAPSHOTS) :] for info in storage.list(SNAPSHOTS))


def load_all(
    storage: Storage,
    key: MasterKey,
    warn: Callable[[str], None] | None = None,
    unreadable: list[str] | None = None,
) -> list[Manifest]:
    """Every readable manifest, oldest first; a damaged one is skipped with `warn` naming it (and its id
    appended to `unreadable`)."""
    manifests = []
    for sid in list_ids(storage):
        try:
            manifests.append(load_manifest(storage, key, sid))
        except ObjectNotFound:
            continue  # forgotten since the listing
        except RepositoryError as exc:
            if unreadable is not None:
                unreadable.append(sid)
            if warn is not None:
                warn(f"{exc}; skipped (`stashplan repo repair snapshots` removes it)")
    return sorted(manifests, key=lambda m: (m.snapshot.time, m.snapshot.id))


def matches(snap: Snapshot, hostname: str | None, tags: Sequence[str]) -> bool:
    """True when `snap` has `hostname` (if given) and every tag in `tags`."""
    return (hostname is None or snap.hostname == hostname) and all(t in snap.tags for t in tags)


def resolve(
    storage: Storage,
    key: MasterKey,
    ref: str,
    hostname: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Manifest:
    """The manifest named by id, unique id prefix or "latest" (newest readable, of `hostname` when given)."""
    if ref in ("latest", ""):
        candidates = [m for m in load_all(storage, key, warn) if matches(m.snapshot, hostname, ())]
        if not candidates:
            host = f" of host {hostname}" if hostname else ""
            raise RepositoryError(f"no snapshot{host} in {storage.location}")
        return candidates[-1]
    found = [sid for sid in list_ids(storage) if sid.startswith(ref.lower())]
    if not found:
        raise RepositoryError(f"snapshot {ref} not found in {storage.location}")
    if len(found) > 1:
        raise RepositoryError(f"snapshot id prefix {ref} is ambiguous ({len(found)} snapshots match)")
    return load_manifest(storage, key, found[0])
