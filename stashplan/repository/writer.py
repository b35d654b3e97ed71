"""The pack writer: sealed blobs -> packs of `pack_size` -> uploads on a small bounded pool -> index files.

Memory is bounded: one pack being filled plus at most `max_in_flight` packs uploading. Index files are
written only for packs whose upload finished, every INDEX_FLUSH blobs and at `close`, each after the
`before_index` check (a backup's lock still held) passed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from providers.storage import Storage
from stashplan.repository.crypto import MasterKey
from stashplan.repository.index import write_index
from stashplan.repository.layout import pack_name
from stashplan.repository.packs import BlobRef, Pack, PackBuilder

INDEX_FLUSH = 4096  # blobs per index file: bounds the memory of pending index entries


class PackWriter:
    """Adds blobs once each (ids in `known` or added before are skipped) and uploads full packs."""

    def __init__(
        self,
        storage: Storage,
        key: MasterKey,
        pack_size: int,
        known: set[bytes],
        *,
        threads: int = 2,
        before_index: Callable[[], None] | None = None,
    ) -> None:
        self.storage = storage
        self.key = key
        self.pack_size = pack_size
        self.known = known
        self.uploaded_bytes = 0
        self._builder = PackBuilder(key)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stashplan-upload")
        self._in_flight: deque[tuple[Future[None], Pack]] = deque()
        self._max_in_flight = threads
        self._done: list[BlobRef] = []
        self._sizes: dict[str, int] = {}  # pack id -> stored length, for the packs in `_done`
        self.index_files: list[str] = []
        self._before_index = before_index  # raises to stop before an index file is written
        self.packs_stored: list[str] = []

    def add(self, blob_type: int, blob_id: bytes, sealed: bytes | bytearray, raw_length: int) -> bool:
        """Queue a sealed blob; False (and nothing stored) when the repository already has it."""
        if blob_id in self.known:
            return False
        self.known.add(blob_id)
        self._builder.add(blob_type, blob_id, sealed, raw_length)
        if self._builder.size >= self.pack_size:
            self._ship()
        return True

    def _ship(self) -> None:
        if not len(self._builder):
            return
        pack = self._builder.finish()
        while len(self._in_flight) >= self._max_in_flight:
            self._reap_one()
        future = self._pool.submit(self.storage.put, pack_name(pack.id), pack.data)
        self._in_flight.append((future, pack))

    def _reap_one(self) -> None:
        future, pack = self._in_flight.popleft()
        future.result()
        self.uploaded_bytes += len(pack.data)
        self._sizes[pack.id] = len(pack.data)
        self.packs_stored.append(pack.id)
        self._done.extend(pack.refs)
        self._builder.recycle(pack)
        if len(self._done) >= INDEX_FLUSH:
            self._write_index()

    def _write_index(self) -> None:
        if self._done:
            if self._before_index is not None:
                self._before_index()
            name = write_index(self.storage, self.key, self._done, self._sizes)
            self.index_files.append(name)
            self._done = []
            self._sizes = {}

    def close(self) -> None:
        """Upload the last pack, wait for every upload, write the index of everything uploaded."""
        self._ship()
        while self._in_flight:
            self._reap_one()
        self._write_index()
        self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stop after a failure: wait for running uploads, write no index (prune removes the packs)."""
        for future, _pack in self._in_flight:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._in_flight.clear()
