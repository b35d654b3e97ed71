"""Snapshot manifests: the sealed JSON written last by a backup, and finding snapshots by id, host and tag.

A manifest holds the metadata below plus `content`: the ids of the list blobs that, concatenated,
give the stream's chunk ids in order. Its object name is `snapshots/<SHA-256 of the stored bytes>`,
checked on every read; a manifest that cannot be read is skipped with a warning naming it. Snapshots
made by a transfer also record their invoker and target (absent in older manifests and in copies).
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
class InvokerRef:
    """The object whose backup made a snapshot (a BackupConfiguration); retention is applied per invoker."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> InvokerRef:
        """`KIND/NAMESPACE/NAME`; ValueError saying the expected shape otherwise."""
        parts = text.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{text!r} is not KIND/NAMESPACE/NAME (e.g. BackupConfiguration/demo/app-db-backup)")
        return cls(*parts)


@dataclass(frozen=True)
class TargetRef:
    """The AppBinding a snapshot was dumped from."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> TargetRef:
        """`NAMESPACE/NAME`; ValueError saying the expected shape otherwise."""
        parts = text.split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{text!r} is not NAMESPACE/NAME (e.g. demo/app-db)")
        return cls(*parts)


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
    invoker: InvokerRef | None = None  # None: made before invokers were recorded, or by `repo backup` without one
    target: TargetRef | None = None


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
        **_origin_fields(snapshot),
    }


def _origin_fields(snapshot: Snapshot) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if snapshot.invoker is not None:
        inv = snapshot.invoker
        out["invoker"] = {"kind": inv.kind, "namespace": inv.namespace, "name": inv.name}
    if snapshot.target is not None:
        out["target"] = {"namespace": snapshot.target.namespace, "name": snapshot.target.name}
    return out


def _invoker(doc: dict) -> InvokerRef | None:
    raw = doc.get("invoker")
    return None if raw is None else InvokerRef(str(raw["kind"]), str(raw["namespace"]), str(raw["name"]))


def _target(doc: dict) -> TargetRef | None:
    raw = doc.get("target")
    return None if raw is None else TargetRef(str(raw["namespace"]), str(raw["name"]))


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
            invoker=_invoker(doc),
            target=_target(doc),
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


def _substituted(storage: Storage, key: MasterKey, snapshot_id: str) -> bool:
    """True when the file named `snapshot_id` holds a whole manifest of this repository that belongs under
    another name: a snapshot file swapped for (or renamed from) another one, not damage."""
    try:
        data = storage.get(SNAPSHOTS + snapshot_id)
        key.open_json(data, "snapshot", f"snapshot {snapshot_id[:8]}")
    except (ObjectNotFound, RepositoryError):
        return False
    return key.object_id(data) != snapshot_id


def load_all_or_refuse(storage: Storage, key: MasterKey, warn: Callable[[str], None] | None = None) -> list[Manifest]:
    """Every readable manifest, for choosing "latest" by the time sealed inside them; RepositoryError when a
    snapshot file holds another snapshot's manifest (swapped for an older one, or renamed): the one it
    replaced may be the latest. Files that do not open at all are skipped with a warning, as by `load_all`."""
    unreadable: list[str] = []
    manifests = load_all(storage, key, warn, unreadable)
    swapped = [sid for sid in unreadable if _substituted(storage, key, sid)]
    if swapped:
        names = ", ".join(f"{SNAPSHOTS}{sid[:8]}…" for sid in swapped[:3])
        raise RepositoryError(
            f"latest snapshot in {storage.location} cannot be decided: {len(swapped)} snapshot file(s) hold "
            f"another snapshot's manifest ({names}); name the snapshot to restore, or remove them with "
            "`stashplan repo repair snapshots`"
        )
    return manifests


def matches(snap: Snapshot, hostname: str | None, tags: Sequence[str]) -> bool:
    """True when `snap` has `hostname` (if given) and every tag in `tags`."""
    return (hostname is None or snap.hostname == hostname) and all(t in snap.tags for t in tags)


def latest_of(
    snaps: Sequence[Snapshot], location: str, hostname: str | None = None, target: TargetRef | None = None
) -> Snapshot:
    """The newest of `snaps` (of `hostname` when given). With `target`: the newest of that target when the
    repository has any; otherwise refused when snapshots of several targets would compete for "latest"."""
    candidates = sorted((s for s in snaps if matches(s, hostname, ())), key=lambda s: (s.time, s.id))
    host = f" of host {hostname}" if hostname else ""
    if not candidates:
        raise RepositoryError(f"no snapshot{host} in {location}")
    if target is not None:
        own = [s for s in candidates if s.target == target]
        if own:
            return own[-1]
        targets = sorted({str(s.target) for s in candidates if s.target is not None})
        if len(targets) > 1:
            raise RepositoryError(
                f"latest snapshot{host} in {location} is ambiguous: none is of {target}, and snapshots of "
                f"{len(targets)} targets ({', '.join(targets)}) are there; name the snapshot to restore"
            )
    return candidates[-1]


def resolve(
    storage: Storage,
    key: MasterKey,
    ref: str,
    hostname: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Manifest:
    """The manifest named by id, unique id prefix or "latest" (newest readable, of `hostname` when given)."""
    if ref in ("latest", ""):
        manifests = {m.snapshot.id: m for m in load_all_or_refuse(storage, key, warn)}
        snap = latest_of([m.snapshot for m in manifests.values()], storage.location, hostname)
        return manifests[snap.id]
    found = [sid for sid in list_ids(storage) if sid.startswith(ref.lower())]
    if not found:
        raise RepositoryError(f"snapshot {ref} not found in {storage.location}")
    if len(found) > 1:
        raise RepositoryError(f"snapshot id prefix {ref} is ambiguous ({len(found)} snapshots match)")
    return load_manifest(storage, key, found[0])
