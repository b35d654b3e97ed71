"""`Repository`: the facade over one repository in a Storage — init/open with a password, and every operation
taking the lock it needs (shared for backup, restore and check; exclusive for forget and prune).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository import locks
from stashplan.repository.backup import BackupRequest, normalise_tags, run_backup
from stashplan.repository.check import CheckResult, run_check
from stashplan.repository.crypto import CorruptData, MasterKey, WrongPassword, unwrap_key, wrap_key
from stashplan.repository.index import Index, load_ids, load_index
from stashplan.repository.layout import CONFIG, DATA, FORMAT_VERSION, KEYS, LOCKS, SNAPSHOTS, Params
from stashplan.repository.prune import PruneResult, run_prune
from stashplan.repository.restic import layout as restic_layout
from stashplan.repository.restore import run_restore
from stashplan.repository.retention import ForgetResult, RetentionPolicy, apply_policy
from stashplan.repository.snapshots import Snapshot, load_all, matches, resolve


@dataclass(frozen=True)
class RepoStats:
    total_size: int  # bytes stored (packs, index, snapshots, keys, config)
    snapshot_count: int
    raw_size: int  # sum of the snapshots' stream sizes
    dedup_ratio: float  # raw_size / total_size (0 when empty)
    pack_count: int
    blob_count: int


def _key_name(doc: dict) -> str:
    import hashlib

    return KEYS + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class Repository:
    """An opened repository. Not thread-safe; one operation at a time per instance."""

    def __init__(self, storage: Storage, key: MasterKey, params: Params, repo_id: str) -> None:
        self.storage = storage
        self.key = key
        self.params = params
        self.id = repo_id
        self._held: list[locks.Lock] = []

    # --- creation -------------------------------------------------------------------------------
    @classmethod
    def init(cls, storage: Storage, password: str, params: Params | None = None) -> Repository:
        """Create a repository; RepositoryError if one exists there already."""
        if not password:
            raise RepositoryError("an empty password is not allowed")
        if storage.exists(CONFIG):
            raise RepositoryError(f"a repository already exists at {storage.location}")
        import secrets

        params = params or Params()
        key = MasterKey.generate()
        repo_id = secrets.token_hex(16)
        doc = wrap_key(key, password)
        storage.put(_key_name(doc), json.dumps(doc).encode())
        config = {"version": FORMAT_VERSION if params.ids != "hmac-sha256" else 1, "id": repo_id, **params.to_json()}
        storage.put(CONFIG, key.seal_json(config))
        return cls(storage, key.with_ids(params.ids), params, repo_id)

    @classmethod
    def open(cls, storage: Storage, password: str) -> Repository:
        """Open with `password`; RepositoryError if not initialised or the password is wrong."""
        if not storage.exists(CONFIG):
            raise RepositoryError(f"no repository at {storage.location} (run `stashplan repo init`)")
        key: MasterKey | None = None
        for info in storage.list(KEYS):
            try:
                key = unwrap_key(json.loads(storage.get(info.name)), password)
                break
            except (WrongPassword, CorruptData, ValueError):
                continue
        if key is None:
            if restic_layout.detect(storage) is not None:
                raise restic_layout.refusal(storage.location, "writing")
            raise RepositoryError(f"wrong password for repository {storage.location}")
        config = key.open_json(storage.get(CONFIG), what="repository config")
        if int(config.get("version", 0)) > FORMAT_VERSION:
            raise RepositoryError(
                f"repository {storage.location} has format version {config['version']}; this stashplan reads {FORMAT_VERSION}"
            )
        params = Params.from_json(config)
        return cls(storage, key.with_ids(params.ids), params, str(config.get("id", "")))

    @classmethod
    def open_or_init(cls, storage: Storage, password: str) -> Repository:
        if storage.exists(CONFIG):
            return cls.open(storage, password)
        return cls.init(storage, password)

    # --- locking --------------------------------------------------------------------------------
    @contextmanager
    def _lock(self, operation: str, *, exclusive: bool) -> Iterator[None]:
        lock = locks.Lock(self.storage, exclusive=exclusive, operation=operation).acquire()
        self._held.append(lock)
        try:
            yield
        finally:
            self._held.remove(lock)
            lock.release()

    def close(self) -> None:
        """Release every lock this instance still holds."""
        while self._held:
            self._held.pop().release()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- operations -----------------------------------------------------------------------------
    def backup(
        self,
        stream: BinaryIO,
        *,
        hostname: str = "host-0",
        tags: Sequence[str] = (),
        source: str = "stdin",
        filename: str = "stdin",
        progress: Callable[[int], None] | None = None,
        times: tuple[datetime, datetime] | None = None,
    ) -> Snapshot:
        """Read `stream` to EOF into a new snapshot; if the stream raises, no snapshot is recorded.
        `times` records a given (time, end_time) instead of now (copying snapshots from elsewhere)."""
        request = BackupRequest(hostname, normalise_tags(tags), source, filename, times)
        with self._lock("backup", exclusive=False):
            known = load_ids(self.storage, self.key)
            return run_backup(self.storage, self.key, self.params, known, stream, request, progress)

    def restore(
        self,
        snapshot: str,
        out: BinaryIO,
        *,
        hostname: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Snapshot:
        """Stream a snapshot (id, unique prefix or "latest") to `out`, verifying its SHA-256."""
        with self._lock("restore", exclusive=False):
            manifest = resolve(self.storage, self.key, snapshot, hostname)
            index = load_index(self.storage, self.key)
            run_restore(self.storage, self.key, index, manifest, out, progress)
            return manifest.snapshot

    def snapshots(self, *, hostname: str | None = None, tags: Sequence[str] = ()) -> list[Snapshot]:
        """Snapshots oldest first, filtered by host and by tags (a snapshot must have all of them)."""
        wanted = normalise_tags(tags)
        return [m.snapshot for m in load_all(self.storage, self.key) if matches(m.snapshot, hostname, wanted)]

    def forget(self, policy: RetentionPolicy, *, dry_run: bool = False, prune: bool = False) -> ForgetResult:
        """Remove the snapshots `policy` does not keep (nothing with dry_run); then prune if asked."""
        with self._lock("forget", exclusive=True):
            result = apply_policy(self.snapshots(), policy)
            if dry_run:
                return result
            for snap in result.remove:
                self.storage.delete(SNAPSHOTS + snap.id)
            if prune and result.remove:
                run_prune(self.storage, self.key, self.params)
            return result

    def prune(self) -> PruneResult:
        with self._lock("prune", exclusive=True):
            return run_prune(self.storage, self.key, self.params)

    def check(self, *, read_data: bool = False) -> CheckResult:
        with self._lock("check", exclusive=False):
            return run_check(self.storage, self.key, read_data=read_data)

    def stats(self) -> RepoStats:
        total = 0
        packs = 0
        for info in self.storage.list():
            if info.name.startswith(LOCKS):
                continue
            total += info.size
            packs += info.name.startswith(DATA)
        snaps = self.snapshots()
        raw = sum(s.total_size for s in snaps)
        index: Index = load_index(self.storage, self.key)
        return RepoStats(total, len(snaps), raw, raw / total if total else 0.0, packs, len(index))

    def unlock(self, *, remove_all: bool = False) -> list[str]:
        """Remove stale locks (all locks with `remove_all`); returns the lock names removed."""
        return locks.unlock(self.storage, remove_all=remove_all)
