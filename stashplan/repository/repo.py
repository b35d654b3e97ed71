"""`Repository`: the facade over one repository in a Storage — init/open with a password, and every operation
taking the lock it needs (shared for backup, restore and check; exclusive for forget and prune).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from providers.storage import MakesBucket, ObjectNotFound, Storage, StorageError
from stashplan.errors import RepositoryError
from stashplan.repository import formats, keys, locks, repair
from stashplan.repository.backup import BackupRequest, normalise_tags, run_backup
from stashplan.repository.check import CheckResult, run_check
from stashplan.repository.crypto import CorruptData, MasterKey, WrongPassword
from stashplan.repository.index import Index, load_ids, load_index
from stashplan.repository.layout import (
    CONFIG,
    DATA,
    FORMAT_VERSION,
    LOCKS,
    SNAPSHOTS,
    TYPED_DOCUMENTS,
    Params,
    pack_id_of,
)
from stashplan.repository.prune import (
    PrunePlan,
    PruneResult,
    execute_prune,
    plan_prune,
    read_state,
    run_prune,
)
from stashplan.repository.repair import RepairResult
from stashplan.repository.restore import run_restore
from stashplan.repository.retention import ForgetResult, RetentionPolicy, apply_policy
from stashplan.repository.rolling import GROUPS, RollingResult, record, run_rolling
from stashplan.repository.snapshots import (
    InvokerRef,
    Snapshot,
    TargetRef,
    latest_of,
    load_all,
    load_all_or_refuse,
    matches,
    resolve,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepoStats:
    total_size: int  # bytes stored (packs, index, snapshots, keys, config)
    snapshot_count: int
    raw_size: int  # sum of the snapshots' stream sizes
    dedup_ratio: float  # raw_size / total_size (0 when empty)
    pack_count: int
    blob_count: int


def _algorithms(key: MasterKey, config: dict) -> MasterKey:
    params = Params.from_json(config)
    return key.with_algorithms(params.ids, params.names)


def _open_config(key: MasterKey, data: bytes) -> tuple[dict, MasterKey] | None:
    """The config opened by `key` (and the key, marked legacy for a repository of a format before typed
    documents, and set to the repository's chunk id and object name algorithms), or None."""
    try:
        config = key.open_json(data, "config", "repository config")
        return config, _algorithms(key, config)
    except CorruptData:
        pass
    legacy = replace(key, legacy=True)
    try:
        config = legacy.open_json(data, "config", "repository config")
    except CorruptData:
        return None
    if int(config.get("version", 0)) >= TYPED_DOCUMENTS:
        return None
    return config, _algorithms(legacy, config)


READ_ONLY = frozenset({"restore", "check"})  # the locked operations `no_lock` may run without a lock


class Repository:
    """An opened repository. Not thread-safe; one operation at a time per instance.

    Files that cannot be read (a damaged index file or snapshot) are skipped and described in
    `warnings`, so everything else keeps working; `repair` fixes them.
    """

    def __init__(self, storage: Storage, key: MasterKey, params: Params, repo_id: str) -> None:
        self.storage = storage
        self.key = key
        self.params = params
        self.id = repo_id
        self.warnings: list[str] = []
        self.lock_wait = 0.0  # seconds an operation waits for a conflicting lock (restic's --retry-lock)
        self.no_lock = False  # reading operations neither take nor check locks (restic's --no-lock)
        self.key_name = ""  # the key file the password opened
        self._held: list[locks.Lock] = []

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)

    # --- creation -------------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        storage: Storage,
        password: str,
        params: Params | None = None,
        *,
        kdf: tuple[int, int, int] | None = None,
    ) -> Repository:
        """Create a repository; RepositoryError if one exists there already (also when another
        process created it a moment before: the first config written wins). `kdf` is scrypt's
        (N, r, p) for the key file; by default calibrated here (`keys.calibrated_kdf`)."""
        created = cls._create(storage, password, params, kdf)
        if created is None:
            raise RepositoryError(f"a repository already exists at {storage.location}")
        return created

    @classmethod
    def _create(
        cls, storage: Storage, password: str, params: Params | None, kdf: tuple[int, int, int] | None
    ) -> Repository | None:
        """A new repository, or None when one exists (or another init won the race for `config`).

        The key file is written first and the config last with create-if-absent, so the config a
        reader finds always has a key; the loser deletes its key file.
        """
        if not password:
            raise RepositoryError("an empty password is not allowed")
        if isinstance(storage, MakesBucket):
            storage.make_bucket()  # a bucket (container) that does not exist yet is created, as restic's init does
        if storage.exists(CONFIG):
            return None
        params = params or Params()
        key = MasterKey.generate()
        repo_id = secrets.token_hex(16)
        key_name = keys.store_key(storage, keys.key_doc(key, password, repo_id, kdf))
        config = key.seal_json({"version": FORMAT_VERSION, "id": repo_id, **params.to_json()}, "config")
        # A retried create may report False when its own first attempt landed: compare the bytes.
        if not storage.put_if_absent(CONFIG, config) and storage.get(CONFIG) != config:
            try:
                storage.delete(key_name)
            except ObjectNotFound:
                pass
            return None
        repo = cls(storage, key.with_algorithms(params.ids, params.names), params, repo_id)
        repo.key_name = key_name
        keys.remove_strays(storage, repo_id, repo.warn)
        return repo

    @classmethod
    def open(cls, storage: Storage, password: str) -> Repository:
        """Open with `password`; RepositoryError if not initialised or the password is wrong."""
        try:
            data = storage.get(CONFIG)
        except ObjectNotFound:
            raise RepositoryError(f"no repository at {storage.location} (run `stashplan repo init`)") from None
        warnings: list[str] = []
        found: list[tuple[dict, MasterKey]] = []

        def fits(key: MasterKey) -> bool:
            opened = _open_config(key, data)
            if opened is not None:
                found.append(opened)
            return opened is not None

        try:
            _key, key_name = keys.find_master_key(storage, password, fits, warnings.append)
        except WrongPassword:
            if formats.detect(storage) is not None:
                raise formats.refusal(storage.location, "writing") from None
            raise
        config, key = found[0]
        if int(config.get("version", 0)) > FORMAT_VERSION:
            raise RepositoryError(
                f"repository {storage.location} has format version {config['version']}; this stashplan reads {FORMAT_VERSION}"
            )
        repo = cls(storage, key, Params.from_json(config), str(config.get("id", "")))
        repo.key_name = key_name
        for message in warnings:
            repo.warn(message)
        return repo

    @classmethod
    def open_or_init(
        cls,
        storage: Storage,
        password: str,
        params: Params | None = None,
        *,
        kdf: tuple[int, int, int] | None = None,
    ) -> Repository:
        """Open the repository, creating it first when there is none; racing callers all end up in
        the one repository whose config was written first. `kdf` as for `init`."""
        created = cls._create(storage, password, params, kdf)
        return created if created is not None else cls.open(storage, password)

    # --- locking --------------------------------------------------------------------------------
    @contextmanager
    def _lock(self, operation: str, *, exclusive: bool) -> Iterator[locks.Lock | None]:
        if self.no_lock and operation in READ_ONLY:
            yield None  # as restic's --no-lock: a read-only or full repository is read; a prune may run meanwhile
            return
        with locks.released_on_sigterm():
            lock = locks.Lock(self.storage, exclusive=exclusive, operation=operation)
            unwritable = False
            try:  # released however the block ends, SIGTERM between two statements included
                try:
                    lock.acquire(self.lock_wait)
                except StorageError as exc:
                    if operation not in READ_ONLY:
                        raise
                    unwritable = True  # nothing was written that a release could remove
                    raise RepositoryError(f"{exc} (a repository that cannot be written is read with --no-lock)") from None
                self._held.append(lock)
                yield lock
            finally:
                if lock in self._held:
                    self._held.remove(lock)
                if not unwritable:
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
    def stored_packs(self) -> dict[str, int]:
        """Pack id -> stored length, from one listing of `data/`."""
        return {pack_id_of(i.name): i.size for i in self.storage.list(DATA)}

    def load_index(self) -> Index:
        """The index, preferring copies of blobs in packs that exist with their indexed length."""
        return load_index(self.storage, self.key, stored=self.stored_packs(), warn=self.warn)

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
        invoker: InvokerRef | None = None,
        target: TargetRef | None = None,
    ) -> Snapshot:
        """Read `stream` to EOF into a new snapshot; if the stream raises, no snapshot is recorded.
        `times` records a given (time, end_time) instead of now (copying snapshots from elsewhere);
        `invoker` and `target` are recorded in the manifest (retention after a backup is per invoker).

        Deduplicates only against blobs whose pack one listing shows with its indexed length (the
        shared lock keeps prune away until the manifest is written); anything else is stored again.
        If the lock is removed meanwhile (found stale by a prune), LockLostError and no snapshot.
        """
        request = BackupRequest(hostname, normalise_tags(tags), source, filename, times, invoker, target)
        with self._lock("backup", exclusive=False) as lock:
            known = load_ids(self.storage, self.key, self.stored_packs(), warn=self.warn)
            return run_backup(self.storage, self.key, self.params, known, stream, request, progress, lock=lock)

    def restore(
        self,
        snapshot: str,
        out: BinaryIO,
        *,
        hostname: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Snapshot:
        """Stream a snapshot (id, unique prefix or "latest") to `out`, verifying its stream checksum."""
        with self._lock("restore", exclusive=False):
            manifest = resolve(self.storage, self.key, snapshot, hostname, self.warn)
            run_restore(self.storage, self.key, self.load_index(), manifest, out, progress)
            return manifest.snapshot

    def snapshots(self, *, hostname: str | None = None, tags: Sequence[str] = ()) -> list[Snapshot]:
        """Readable snapshots oldest first, filtered by host and by tags (a snapshot must have all)."""
        wanted = normalise_tags(tags)
        return [
            m.snapshot
            for m in load_all(self.storage, self.key, self.warn)
            if matches(m.snapshot, hostname, wanted)
        ]

    def latest(self, *, hostname: str | None = None, target: TargetRef | None = None) -> Snapshot:
        """The newest snapshot by the time sealed in its manifest (of `hostname`; of `target` when it has
        any); refused while a snapshot file holds another snapshot's manifest (swapped or renamed)."""
        snaps = [m.snapshot for m in load_all_or_refuse(self.storage, self.key, self.warn)]
        return latest_of(snaps, self.storage.location, hostname, target)

    def forget(
        self,
        policy: RetentionPolicy,
        *,
        dry_run: bool = False,
        prune: bool = False,
        invoker: InvokerRef | None = None,
    ) -> ForgetResult:
        """Remove the snapshots `policy` does not keep (nothing with dry_run); then prune if asked.
        With `invoker`, only that invoker's snapshots are considered (the retention of one BackupConfiguration)."""
        with self._lock("forget", exclusive=True) as lock:
            assert lock is not None  # only read-only operations go without one
            result = apply_policy(self.snapshots(), policy, invoker)
            if dry_run:
                return result
            lock.verify("nothing forgotten")
            for snap in result.remove:
                try:
                    self.storage.delete(SNAPSHOTS + snap.id)
                except ObjectNotFound:
                    continue
            if prune and result.remove:
                lock.verify("snapshots forgotten, not pruned")
                run_prune(self.storage, self.key, self.params, warn=self.warn)
            return result

    def prune_plan(self) -> PrunePlan:
        """What `prune` would do now; reads without taking a lock and writes nothing (`repo prune --dry-run`)."""
        stored, index, used = read_state(self.storage, self.key, self.warn)
        return plan_prune(stored, index, used)

    def prune(self) -> PruneResult:
        """Plan under the exclusive lock, then carry the plan out."""
        with self._lock("prune", exclusive=True) as lock:
            assert lock is not None  # only read-only operations go without one
            plan = self.prune_plan()
            lock.verify("nothing pruned")  # a backup that found it stale may use what the plan deletes
            return execute_prune(self.storage, self.key, self.params, plan)

    def check(self, *, read_data: bool = False, subset: str | None = None) -> CheckResult:
        """Check the structure; with `read_data` every pack, with `subset` ("n/m" or "p%") a share."""
        with self._lock("check", exclusive=False):
            started = datetime.now(UTC)
            result = run_check(self.storage, self.key, read_data=read_data, subset=subset)
            if read_data and not self.no_lock:  # every pack was read: the rolling read starts over from now
                try:
                    record(self.storage, self.key, list(range(GROUPS)), started, self.warn)
                except StorageError as exc:
                    self.warn(f"could not record the read in `verified`: {exc}")
            return result

    def read_rolling(self, now: datetime, window: timedelta) -> RollingResult:
        """Read in full the packs whose turn has come, so every pack is read at least once per `window`
        (`rolling.py`); packs found damaged are marked, so a backup made next stores their data again."""
        with self._lock("check", exclusive=False):
            return run_rolling(self.storage, self.key, now, window, self.warn)

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
        index: Index = load_index(self.storage, self.key, warn=self.warn)
        return RepoStats(total, len(snaps), raw, raw / total if total else 0.0, packs, len(index))

    def unlock(self, *, remove_all: bool = False) -> list[str]:
        """Remove stale locks (all locks with `remove_all`); returns the lock names removed."""
        return locks.unlock(self.storage, remove_all=remove_all)

    # --- repair ---------------------------------------------------------------------------------
    def repair_index(self) -> RepairResult:
        """Rebuild the index from the packs' headers (exclusive lock)."""
        with self._lock("repair index", exclusive=True):
            return repair.repair_index(self.storage, self.key)

    def repair_packs(self, packs: Sequence[str] | None = None) -> RepairResult:
        """Salvage damaged packs (the named ones, or every pack failing its checksum)."""
        with self._lock("repair packs", exclusive=True):
            return repair.repair_packs(self.storage, self.key, self.params, list(packs or ()), self.warn)

    def repair_snapshots(self, *, dry_run: bool = False) -> RepairResult:
        """Remove snapshots that cannot be read or whose data is gone."""
        with self._lock("repair snapshots", exclusive=True):
            return repair.repair_snapshots(self.storage, self.key, dry_run=dry_run, warn=self.warn)

    # --- keys -----------------------------------------------------------------------------------
    def list_keys(self) -> list[keys.KeyInfo]:
        return [keys.describe(name, doc) for name, doc in keys.read_keys(self.storage, self.warn)]

    def add_key(self, password: str) -> str:
        """A new key file wrapping the same master key with `password`; returns its name."""
        if not password:
            raise RepositoryError("an empty password is not allowed")
        return keys.store_key(self.storage, keys.key_doc(self.key, password, self.id))

    def remove_key(self, ref: str) -> str:
        """Delete the key file with id (or unique prefix) `ref`; never the one this password opened."""
        found = [i.name for i in self.list_keys() if i.id.startswith(ref.lower())] if ref else []
        if len(found) != 1:
            raise RepositoryError(f"key {ref!r}: {'no' if not found else len(found)} key files match")
        if found[0] == self.key_name:
            raise RepositoryError(f"key {ref}: this is the key the password opened; use `repo key passwd`")
        self.storage.delete(found[0])
        return found[0]

    def change_password(self, password: str) -> str:
        """Replace this password's key file by one for `password` (written first); the new name."""
        new = self.add_key(password)
        old, self.key_name = self.key_name, new
        if old and old != new:
            try:
                self.storage.delete(old)
            except ObjectNotFound:
                pass
        return new
