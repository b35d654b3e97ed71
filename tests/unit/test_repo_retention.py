"""Retention policies against restic's documented `forget` examples and semantics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from stashplan.repository import InvokerRef, RetentionPolicy, Snapshot, apply_policy


def snap(
    when: datetime, host: str = "mopped", tags: tuple[str, ...] = (), filename: str = "stdin"
) -> Snapshot:
    sid = f"{int(when.timestamp()):016x}{host}".ljust(64, "0")
    return Snapshot(sid, sid[:8], when, when, host, tags, "stdin", filename, 1, 1, "0" * 64)


def sundays() -> list[Snapshot]:
    start = datetime(2019, 9, 1, 11, 0, tzinfo=UTC)
    return [snap(start + timedelta(weeks=n)) for n in range(12)]


def dates(snaps: list[Snapshot]) -> list[str]:
    return [s.time.strftime("%Y-%m-%d") for s in snaps]


def test_keep_daily_4_on_twelve_weekly_sundays_keeps_the_last_four_like_restic_docs() -> None:
    result = apply_policy(sundays(), RetentionPolicy(keep_daily=4))
    assert dates(result.keep) == ["2019-10-27", "2019-11-03", "2019-11-10", "2019-11-17"]
    assert len(result.remove) == 8
    assert dates(result.remove)[0] == "2019-09-01"


def test_hundred_years_of_dailies_keep_7_daily_4_more_weekly_and_monthly_and_yearly() -> None:
    # restic docs: daily backups for 100 years, --keep-daily 7 --keep-weekly 5 --keep-monthly 12
    # --keep-yearly 75 keeps 7 dailies, 4 further weeklies, 11-12 monthlies and 74-75 yearlies.
    start = datetime(1950, 1, 1, 12, 0, tzinfo=UTC)
    end = datetime(2049, 12, 26, 12, 0, tzinfo=UTC)  # a Sunday, as in the docs' reasoning
    assert end.strftime("%a") == "Sun"
    snaps = [snap(start + timedelta(days=n)) for n in range((end - start).days + 1)]
    result = apply_policy(
        snaps, RetentionPolicy(keep_daily=7, keep_weekly=5, keep_monthly=12, keep_yearly=75)
    )
    reasons = result.reasons
    daily = [s for s in result.keep if "daily snapshot" in reasons[s.id]]
    weekly_only = [s for s in result.keep if "weekly snapshot" in reasons[s.id] and s not in daily]
    assert len(daily) == 7
    assert len(weekly_only) == 4
    monthly = [s for s in result.keep if "monthly snapshot" in reasons[s.id]]
    yearly = [s for s in result.keep if "yearly snapshot" in reasons[s.id]]
    assert len(monthly) == 12 and len(yearly) == 75
    assert 7 + 4 + 11 + 74 <= len(result.keep) <= 7 + 4 + 12 + 75
    assert len(result.keep) + len(result.remove) == len(snaps)


def test_keep_last_keeps_the_newest_n() -> None:
    result = apply_policy(sundays(), RetentionPolicy(keep_last=3))
    assert dates(result.keep) == ["2019-11-03", "2019-11-10", "2019-11-17"]


def test_keep_hourly_keeps_only_the_newest_snapshot_of_each_hour() -> None:
    base = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    snaps = [snap(base + timedelta(minutes=20 * n)) for n in range(9)]  # 10:00 .. 12:40
    result = apply_policy(snaps, RetentionPolicy(keep_hourly=2))
    assert [s.time.strftime("%H:%M") for s in result.keep] == ["11:40", "12:40"]


def test_keep_weekly_uses_iso_weeks_and_monthly_calendar_months() -> None:
    base = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # a Monday
    snaps = [snap(base + timedelta(days=n)) for n in range(60)]
    weekly = apply_policy(snaps, RetentionPolicy(keep_weekly=2))
    assert [s.time.strftime("%a") for s in weekly.keep] == ["Sun", "Thu"]  # last full week's Sunday, newest
    monthly = apply_policy(snaps, RetentionPolicy(keep_monthly=3))
    assert dates(monthly.keep) == ["2024-01-31", "2024-02-29"]


def test_keep_tags_keeps_every_snapshot_with_all_tags_of_an_entry() -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    snaps = [
        snap(base, tags=("foo",)),
        snap(base + timedelta(days=1), tags=("foo", "bar")),
        snap(base + timedelta(days=2), tags=("bar",)),
        snap(base + timedelta(days=3)),
    ]
    result = apply_policy(snaps, RetentionPolicy(keep_tags=("foo,bar",)))
    assert [s.tags for s in result.keep] == [("foo", "bar")]
    either = apply_policy(snaps, RetentionPolicy(keep_tags=("foo", "bar")))
    assert len(either.keep) == 3


def test_policies_apply_per_host_and_filename_group() -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    snaps = [snap(base + timedelta(hours=n), host=h) for n in range(3) for h in ("a", "b")]
    result = apply_policy(snaps, RetentionPolicy(keep_last=1))
    assert sorted(s.hostname for s in result.keep) == ["a", "b"]
    assert len(result.remove) == 4


def test_an_empty_policy_removes_nothing() -> None:
    result = apply_policy(sundays(), RetentionPolicy())
    assert result.remove == [] and len(result.keep) == 12


def test_each_invoker_is_its_own_group_and_a_scoped_policy_touches_no_other_invoker() -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    a = InvokerRef("BackupConfiguration", "demo", "a")
    b = InvokerRef("BackupConfiguration", "demo", "b")
    snaps = [
        replace(snap(base + timedelta(hours=n, minutes=m)), id=f"{n}{m}", invoker=inv)
        for n in range(3)
        for m, inv in ((0, a), (1, b), (2, None))
    ]
    every = apply_policy(snaps, RetentionPolicy(keep_last=1))
    assert sorted(s.id for s in every.keep) == ["20", "21", "22"]  # newest of a, of b, and of the old grouping
    scoped = apply_policy(snaps, RetentionPolicy(keep_last=1), invoker=b)
    assert [s.id for s in scoped.keep] == ["21"]
    assert [s.id for s in scoped.remove] == ["01", "11"]  # a's and unattributed snapshots are left alone
