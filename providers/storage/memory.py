"""The `memory` backend: objects in a dict, for tests and throwaway repositories (like restic's mem backend)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from providers.storage.base import ObjectInfo, ObjectNotFound, Source, as_bytes, check_name


class MemoryStorage:
    """A thread-safe dict of name -> bytes; lost when the process ends."""

    def __init__(self, label: str = "default") -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._label = label

    @property
    def location(self) -> str:
        return f"memory:{self._label}"

    def put(self, name: str, source: Source) -> None:
        data = bytes(as_bytes(source))
        with self._lock:
            self._objects[check_name(name)] = data

    def put_if_absent(self, name: str, source: Source) -> bool:
        data = bytes(as_bytes(source))
        with self._lock:
            if check_name(name) in self._objects:
                return False
            self._objects[name] = data
            return True

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        with self._lock:
            data = self._objects.get(name)
        if data is None:
            raise ObjectNotFound(self.location, name)
        end = len(data) if length is None else offset + length
        return data[offset:end]

    def open(self, name: str) -> BinaryIO:
        return io.BytesIO(self.get(name))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            items = [(k, len(v)) for k, v in self._objects.items() if k.startswith(prefix)]
        for name, size in items:
            yield ObjectInfo(name, size)

    def delete(self, name: str) -> None:
        with self._lock:
            if self._objects.pop(name, None) is None:
                raise ObjectNotFound(self.location, name)

    def exists(self, name: str) -> bool:
        with self._lock:
            return name in self._objects

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        return []  # writes are never partial
