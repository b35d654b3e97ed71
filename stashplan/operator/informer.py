"""An informer: a Cluster whose reads come from a local cache that one list per kind fills and watch
streams keep current, so a loop iteration reads nothing from the server. I/O layer (background threads).

Writes go to the server and their results into the cache at once (the watch later confirms them). Each
change the watch delivers is recorded; `drain` hands the identities changed since the previous drain to
the loop, which reconciles only what they touch. `relist` rebuilds the cache from fresh lists (the slow
resync that also repairs anything a lost stream missed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from stashplan.cluster.base import Cluster, WatchEvent, matches_labels
from stashplan.errors import NotFound
from stashplan.kinds import identity, kind_info
from stashplan.managed_fields import FIELD_MANAGER

log = logging.getLogger("stashplan.operator.informer")
Key = tuple[str, str, str]


def _rv(obj: dict) -> int | None:
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else None



class Stoppable(Protocol):
    """A stop request (threading.Event, or the loop's signal-safe StopFlag)."""

    def is_set(self) -> bool: ...

class Informer:
    """Cached `list`/`get` of `kinds` over `cluster`; other kinds and all writes pass through."""

    def __init__(self, cluster: Cluster, kinds: Sequence[str], *, chunk: float = 30.0) -> None:
        self.cluster, self.kinds, self.chunk = cluster, tuple(kinds), chunk
        self._objects: dict[str, dict[Key, dict]] = {kind: {} for kind in self.kinds}
        self._lock = threading.Lock()
        self._changed: set[Key] = set()
        self._lists = 0  # lists served by the server (relists), for tests and benchmarks
        self.dirty = threading.Event()  # set by every change the watch delivers
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._generation = 0  # bumped by relist: watch threads of an older generation stop

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Informer:
        self.relist()
        return self

    def relist(self) -> None:
        """Fill the cache from one list per kind and (re)start one watch stream per kind from there."""
        fresh = {kind: {identity(o): o for o in self.cluster.list(kind)} for kind in self.kinds}
        newest = max((r for objs in fresh.values() for o in objs.values() if (r := _rv(o)) is not None), default=None)
        with self._lock:
            self._objects = fresh
            self._changed.clear()
            self._lists += 1
            self._generation += 1
            generation = self._generation
        for kind in self.kinds:
            rvs = [r for o in fresh[kind].values() if (r := _rv(o)) is not None]
            since = max(rvs) if rvs else newest  # any resourceVersion is a valid start for every kind
            thread = threading.Thread(target=self._watch, args=(kind, None if since is None else str(since),
                                                                  generation),
                                      name=f"informer-{kind}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._threads = [t for t in self._threads if t.is_alive()]

    def close(self) -> None:
        self._closed.set()

    # -- what the loop asks --------------------------------------------------------------------
    def drain(self) -> set[Key]:
        """The identities of objects changed (by anyone) since the previous drain."""
        with self._lock:
            changed, self._changed = self._changed, set()
        self.dirty.clear()
        return changed

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        """The cached object (a kind not cached is read from the server; None when it does not exist)."""
        if kind not in self._objects:
            try:
                return self.cluster.get(kind, namespace, name)
            except NotFound:
                return None
        return self._objects[kind].get((kind, namespace if kind_info(kind).namespaced else "", name))

    def in_namespace(self, kind: str, namespace: str) -> list[dict]:
        if kind not in self._objects:
            return self.cluster.list(kind, namespace)
        return [o for (_, ns, _), o in self._objects[kind].items() if ns == namespace]

    @property
    def relists(self) -> int:
        return self._lists

    def wait(self, delay: float, stop_event: Stoppable) -> None:
        """Sleep up to `delay` seconds; return early on a change or a stop."""
        end = time.monotonic() + delay
        while not stop_event.is_set() and time.monotonic() < end:
            if self.dirty.wait(min(0.2, max(0.0, end - time.monotonic()))):
                return

    # -- the Cluster interface -----------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> list[dict]:
        if kind not in self._objects:
            return self.cluster.list(kind, namespace, labels)
        objs = self._objects[kind].values()
        return [o for o in objs if (namespace is None or o["metadata"].get("namespace") == namespace
                                    or not kind_info(kind).namespaced) and matches_labels(o, labels)]

    def get(self, kind: str, namespace: str, name: str) -> dict:
        return self.cluster.get(kind, namespace, name)  # a get is a deliberate fresh read

    def create(self, obj: dict) -> dict:
        return self._store(self.cluster.create(obj))

    def replace(self, obj: dict) -> dict:
        return self._store(self.cluster.replace(obj))

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict:
        return self._store(self.cluster.apply(obj, field_manager=field_manager))

    def patch_status(self, kind: str, namespace: str, name: str, status: dict, *,
                     resource_version: str | None = None) -> dict:
        return self._store(self.cluster.patch_status(kind, namespace, name, status, resource_version=resource_version))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            self.cluster.delete(kind, namespace, name)
        finally:
            if kind in self._objects:
                with self._lock:
                    self._objects[kind].pop((kind, namespace if kind_info(kind).namespaced else "", name), None)

    def watch(self, kinds: Sequence[str], since: str | None = None, timeout: float = 10.0) -> Iterator[WatchEvent]:
        return self.cluster.watch(kinds, since, timeout)

    # -- plumbing --------------------------------------------------------------------------------
    def _store(self, obj: dict) -> dict:
        kind = obj.get("kind", "")
        if kind in self._objects:
            self._put(obj, mark=False)
        return obj

    def _put(self, obj: dict, *, mark: bool) -> None:
        key = identity(obj)
        with self._lock:
            have = self._objects[key[0]].get(key)
            new, old = _rv(obj), None if have is None else _rv(have)
            if new is not None and old is not None and new < old:
                return  # an older version than what a write of ours already stored
            self._objects[key[0]][key] = obj
            if mark:
                self._changed.add(key)

    def _forget(self, obj: dict) -> None:
        key = identity(obj)
        with self._lock:
            self._objects[key[0]].pop(key, None)
            self._changed.add(key)

    def _watch(self, kind: str, since: str | None, generation: int) -> None:
        while not self._closed.is_set() and generation == self._generation:
            try:
                for event in self.cluster.watch([kind], since, timeout=self.chunk):
                    if self._closed.is_set() or generation != self._generation:
                        return
                    since = (event.object.get("metadata") or {}).get("resourceVersion") or since
                    if event.type == "DELETED":
                        self._forget(event.object)
                    else:
                        self._put(event.object, mark=True)
                    self.dirty.set()
            except NotFound:
                log.warning("informer: %s cannot be watched here; relying on resync", kind)
                return
            except Exception as exc:
                if self._closed.is_set():
                    return
                log.warning("informer watch of %s failed: %s; retrying", kind, exc)
                self._closed.wait(1.0)
