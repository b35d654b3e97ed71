"""The shared retry policy and loop (stashplan.backoff) used by the Kubernetes adapter and the storage wrapper."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stashplan.backoff import RetryPolicy, retrying
from stashplan.errors import RepositoryError, TransientError

STEADY = RetryPolicy(attempts=6, base_delay=0.1, max_delay=1.0, jitter=0.0)


class Throttled(TransientError):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("SlowDown")
        self.retry_after = retry_after


def failing(errors: list[Exception]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "done"

    return calls, call


def test_delays_double_then_stay_at_the_cap() -> None:
    sleeps: list[float] = []
    calls, call = failing([TransientError("x")] * 5)
    assert retrying(STEADY, call, sleep=sleeps.append) == "done"
    assert len(calls) == 6
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])


def test_jitter_only_shortens_a_delay_and_by_at_most_its_share() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.5)
    assert policy.delay(3, rand=lambda: 0.0) == 4.0
    assert policy.delay(3, rand=lambda: 0.999) == pytest.approx(2.002)


def test_a_longer_retry_after_is_waited_but_never_beyond_the_cap() -> None:
    sleeps: list[float] = []
    _calls, call = failing([Throttled(retry_after=0.7), Throttled(retry_after=30.0), Throttled(retry_after=0.01)])
    assert retrying(STEADY, call, sleep=sleeps.append) == "done"
    assert sleeps == pytest.approx([0.7, 1.0, 0.4])  # the server's wait, the cap, then our own longer delay


def test_the_last_transient_error_is_raised_when_attempts_run_out() -> None:
    sleeps: list[float] = []
    calls, call = failing([TransientError(f"try {n}") for n in range(10)])
    with pytest.raises(TransientError, match="try 2"):
        retrying(RetryPolicy(attempts=3, jitter=0.0), call, sleep=sleeps.append)
    assert len(calls) == 3 and len(sleeps) == 2


def test_permanent_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []
    calls, call = failing([RepositoryError("wrong password")])
    with pytest.raises(RepositoryError, match="wrong password"):
        retrying(STEADY, call, sleep=sleeps.append)
    assert len(calls) == 1 and sleeps == []


def test_no_retry_when_the_caller_cannot_repeat_the_call() -> None:
    calls, call = failing([TransientError("x")])
    with pytest.raises(TransientError):
        retrying(STEADY, call, may_retry=lambda: False, sleep=lambda _s: None)
    assert len(calls) == 1
