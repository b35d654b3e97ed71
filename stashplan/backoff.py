"""Retry with exponential backoff: the one policy and loop the Kubernetes adapter and the storage wrapper share.

Layer: a shared leaf; imports nothing of stashplan but its errors.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from stashplan.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait: `attempts` calls in all; before retry n (1, 2, ...) a delay of
    base_delay * 2**(n-1), capped at max_delay, times a random factor in [1 - jitter, 1] (so that clients
    failing together do not retry together); a server's Retry-After, when longer, is waited instead (capped
    at max_delay too)."""

    attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 5.0
    jitter: float = 0.5

    def delay(self, retry: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        wait = min(self.max_delay, self.base_delay * 2 ** (retry - 1)) * (1 - self.jitter * rand())
        return min(max(wait, retry_after or 0.0), self.max_delay)


def retrying(
    policy: RetryPolicy,
    call: Callable[[], T],
    *,
    transient: type[BaseException] | tuple[type[BaseException], ...] = TransientError,
    may_retry: Callable[[], bool] | None = None,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, called again after a delay while it raises one of `transient`, up to `policy.attempts` calls;
    then its last error is raised. Any other error is permanent and raised at once. An exception's
    `retry_after` attribute (seconds, e.g. from an HTTP Retry-After header) is honoured. `may_retry` is
    asked before each retry (False: raise now, e.g. a stream that cannot be rewound); `on_retry(error,
    retry, delay)` is told of each."""
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except transient as exc:
            if attempt == attempts or (may_retry is not None and not may_retry()):
                raise
            delay = policy.delay(attempt, getattr(exc, "retry_after", None))
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            sleep(delay)
    raise AssertionError("unreachable")
