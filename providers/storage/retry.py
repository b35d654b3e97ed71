"""A Storage wrapper that retries TransientError with `stashplan.backoff`; backends never retry themselves."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, TypeVar

from providers.storage.base import MakesBucket, ObjectInfo, Source, Storage, as_bytes
from stashplan.backoff import RetryPolicy, retrying

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryingStorage:
    """Retries each call on TransientError by `stashplan.backoff` (default: 5 attempts, 0.2 s doubling to
    at most 10 s, with jitter). A stream source of `put` is rewound before a retry when it is seekable;
    otherwise it is not retried."""

    def __init__(
        self,
        inner: Storage,
        *,
        attempts: int = 5,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.policy = RetryPolicy(max(1, attempts), base_delay, max_delay)
        self._sleep = sleep

    @property
    def location(self) -> str:
        return self.inner.location

    def _call(self, what: str, fn: Callable[[], T], rewind: Callable[[], bool] | None = None) -> T:
        def warn(exc: BaseException, retry: int, delay: float) -> None:
            log.warning("%s: %s failed (%s); retry %d in %.1fs", self.location, what, exc, retry, delay)

        return retrying(self.policy, fn, may_retry=rewind, on_retry=warn, sleep=self._sleep)

    def put(self, name: str, source: Source) -> None:
        rewind: Callable[[], bool] | None = None
        if not isinstance(source, bytes | bytearray | memoryview):
            stream = source
            try:
                start = stream.tell() if stream.seekable() else -1
            except OSError:
                start = -1

            def rewind() -> bool:
                if start < 0:
                    return False
                stream.seek(start)
                return True

        self._call(f"put {name}", lambda: self.inner.put(name, source), rewind)

    def make_bucket(self) -> bool:
        """The inner backend's `make_bucket`, retried; False for a backend without buckets."""
        inner = self.inner
        if not isinstance(inner, MakesBucket):
            return False
        return self._call("make bucket", inner.make_bucket)

    def put_if_absent(self, name: str, source: Source) -> bool:
        data = as_bytes(source)  # in memory, so a retry sends the same bytes
        return self._call(f"put_if_absent {name}", lambda: self.inner.put_if_absent(name, data))

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._call(f"get {name}", lambda: self.inner.get(name, offset, length))

    def open(self, name: str) -> BinaryIO:
        return self._call(f"open {name}", lambda: self.inner.open(name))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Listing is materialised so that a retry restarts it cleanly.
        return iter(self._call(f"list {prefix}", lambda: list(self.inner.list(prefix))))

    def delete(self, name: str) -> None:
        self._call(f"delete {name}", lambda: self.inner.delete(name))

    def exists(self, name: str) -> bool:
        return self._call(f"exists {name}", lambda: self.inner.exists(name))

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        return self._call("remove leftovers", lambda: self.inner.remove_leftovers(older_than))
