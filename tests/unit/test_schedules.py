"""Cron schedules as the alerts and the overview read them: the longest gap between two runs, the margin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stashplan.schedules import allowed_age, longest_gap, next_run


@pytest.mark.parametrize(("schedule", "gap"), [
    ("*/15 * * * *", 900),
    ("0 2 * * *", 86400),
    ("@daily", 86400),
    ("0 1,13 * * *", 12 * 3600),
    ("30 2,3 * * *", 23 * 3600),  # two runs an hour apart, then 23 h
    ("0 2 * * 1-5", 3 * 86400),  # Friday to Monday
    ("* * * * 1-5", 2 * 86400 + 60),  # every minute on weekdays: the weekend
    ("0 0 1 * *", 31 * 86400),
    ("0 0 29 2 *", (datetime(2028, 2, 29) - datetime(2024, 2, 29)).total_seconds()),
])
def test_longest_gap_is_the_longest_time_between_two_runs(schedule: str, gap: float) -> None:
    assert longest_gap(schedule) == gap


def test_an_invalid_schedule_has_no_gap_and_no_next_run() -> None:
    assert longest_gap("every day") is None
    assert next_run("61 * * * *", datetime(2024, 1, 1, tzinfo=UTC)) is None


def test_next_run_is_after_now() -> None:
    assert next_run("0 2 * * *", datetime(2024, 1, 1, 2, 0, tzinfo=UTC)) == datetime(2024, 1, 2, 2, 0, tzinfo=UTC)


def test_allowed_age_adds_a_quarter_of_the_interval_and_at_least_an_hour() -> None:
    assert allowed_age(3600) == 7200
    assert allowed_age(86400) == 30 * 3600
    assert allowed_age(7 * 86400) == 8 * 86400 + 18 * 3600
