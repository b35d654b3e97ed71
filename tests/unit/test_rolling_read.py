"""The rolling read's schedule (`rolling.due_groups`): whatever the backup schedule, at every backup each group of
packs was read less than a window ago, and a daily schedule reads about a seventh of the groups each time."""

from __future__ import annotations

import random

from stashplan.repository.rolling import GROUPS, due_groups

DAY = 86400.0
WINDOW = 7 * DAY


def simulate(times: list[float]) -> tuple[float, list[int]]:
    """Run the rolling read at `times`: the oldest group age seen at a backup, and groups read per run."""
    last = [0.0] * GROUPS
    oldest, per_run = 0.0, []
    for i, now in enumerate(times):
        due = due_groups(last, now, WINDOW)
        for group in due:
            last[group] = now
        per_run.append(len(due))
        if i:  # after the first run (which reads everything once)
            oldest = max(oldest, max(now - t for t in last))
    return oldest, per_run


def test_a_daily_schedule_reads_a_seventh_each_day_and_every_group_within_the_window() -> None:
    start = 1_700_000_000.0
    oldest, per_run = simulate([start + d * DAY + 120 for d in range(60)])
    assert per_run[0] == GROUPS
    assert oldest < WINDOW
    assert all(36 <= n <= 37 for n in per_run[8:])  # 256 / 7


def test_missed_runs_and_irregular_schedules_are_caught_up_at_the_next_backup() -> None:
    rng = random.Random(7)
    now, times = 1_700_000_000.0, []
    for _ in range(400):
        now += rng.choice([600.0, 3600.0, DAY, 3 * DAY, 9 * DAY])  # minutes to beyond the window
        times.append(now)
    oldest, per_run = simulate(times)
    assert oldest < WINDOW
    assert sum(per_run[1:]) < GROUPS * (times[-1] - times[0]) / WINDOW * 1.2  # about once per window
