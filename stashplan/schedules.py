"""Cron schedules as the alerts and the overview read them: the longest gap between two runs, the next run,
and how old a last success may be before it is overdue. Pure leaf (croniter, UTC as the cron controller)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from croniter import croniter

# The gaps are measured from a fixed start over a window long enough for yearly patterns (a leap year, so that
# `0 0 29 2 *` shows its four years) and capped in runs so that `* * * * *` costs milliseconds, once: cached.
_REFERENCE = datetime(2024, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=400)
MAX_RUNS = 20_000
MIN_MARGIN = 3600.0  # seconds: a backup's own duration, at least (the rule file's clamp_min)


@lru_cache(maxsize=4096)
def longest_gap(schedule: str) -> float | None:
    """Seconds of the longest gap between two consecutive runs of `schedule` over WINDOW (None if invalid).
    `*/15 * * * *` -> 900, `0 2 * * *` -> 86400, `0 2 * * 1-5` -> 3 days (Friday to Monday)."""
    try:
        it = croniter(schedule, _REFERENCE)
        prev = it.get_next(datetime)
    except (ValueError, KeyError, TypeError):
        return None
    daily = all(field == ["*"] for field in it.expanded[2:5])  # the same runs every day: two days tell
    end, gap = _REFERENCE + (timedelta(days=2) if daily else WINDOW), 0.0
    for _ in range(MAX_RUNS):
        nxt = it.get_next(datetime)
        gap = max(gap, (nxt - prev).total_seconds())
        if nxt >= end:
            break
        prev = nxt
    return gap


def next_run(schedule: str, now: datetime) -> datetime | None:
    """The first run of `schedule` after `now` (None if the schedule is invalid)."""
    try:
        nxt: datetime = croniter(schedule, now).get_next(datetime)
    except (ValueError, KeyError, TypeError):
        return None
    return nxt


def allowed_age(interval: float) -> float:
    """How old a last success may be before it is overdue: the interval plus a quarter of it, at least an hour
    (the same margin as the recording rule `stashplan:backupconfiguration_allowed_age_seconds`)."""
    return interval + max(0.25 * interval, MIN_MARGIN)
