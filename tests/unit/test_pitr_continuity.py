"""What a base backup's check reports about the WAL archive (pure): the Repository's status.pitr, the
WALContinuous condition and the gauges, for a whole archive, one with two gaps, and one with nothing usable."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from stashplan.pitr import continuity
from stashplan.pitr.inventory import Inventory
from stashplan.pitr.walstore import Archived
from stashplan.pitr.window import BaseBackup, gaps, windows

MB16 = 16 * 1024 * 1024
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
LABELS = {"namespace": "demo", "name": "repo"}


def _inventory(segments: set[int], end_time: datetime | None) -> Inventory:
    backup = BaseBackup("b1", 1, 2 * MB16 + 0x28, 2 * MB16 + 0x100, T0, T0 + timedelta(minutes=1))
    found = windows([backup], {1: segments})
    return Inventory((backup,), (), Archived({1: segments}, ()), tuple(replace(w, end_time=end_time) for w in found),
                     tuple(gaps([backup], {1: segments})), {}, ())


def _gauges(c: continuity.Continuity) -> dict[str, float]:
    return {m.name: m.samples[0].value for m in continuity.registry(LABELS, c).collect()}


def test_a_whole_archive_reports_its_window_and_no_gap() -> None:
    c = continuity.of_inventory(_inventory({2, 3, 4}, T0 + timedelta(minutes=30)), NOW)
    assert continuity.status(c) == {
        "gaps": 0, "verifiedTime": "2026-12-01T12:00:00Z", "firstRecoverableTime": "2026-12-01T10:01:00Z",
        "lastRecoverableTime": "2026-12-01T10:30:00Z", "timeline": 1, "windowSeconds": 29 * 60,
    }
    assert continuity.condition(c) == (
        True, "WALContinuous", "recoverable from 2026-12-01T10:01:00Z to 2026-12-01T10:30:00Z on timeline 1 (up to 0/5000000)"
    )
    assert _gauges(c)[continuity.WINDOW] == 29 * 60 and _gauges(c)[continuity.GAPS] == 0


def test_two_gaps_name_the_first_and_count_both() -> None:
    c = continuity.of_inventory(_inventory({2, 3, 5, 7}, T0 + timedelta(minutes=5)), NOW)
    ok, reason, message = continuity.condition(c)
    assert (ok, reason) == (False, "WALGapFound")
    assert message == ("the WAL archive has a gap: timeline 1: segment 000000010000000000000004 is missing "
                       "(2 gaps; `stashplan pg wal-verify` lists them)")
    assert continuity.status(c)["gaps"] == 2 and _gauges(c)[continuity.GAPS] == 2
    assert continuity.status(c)["lastRecoverableTime"] == "2026-12-01T10:05:00Z"  # the window ends at the gap


def test_a_window_end_before_the_backups_recorded_stop_reports_the_stop() -> None:
    c = continuity.of_inventory(_inventory({2}, T0 + timedelta(seconds=50)), NOW)
    assert (c.first, c.last) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=1))


def test_nothing_recoverable_is_a_false_condition_and_zero_timestamps() -> None:
    c = continuity.of_inventory(_inventory({3, 4}, None), NOW)  # the base backup's own segment 2 is missing
    assert continuity.condition(c)[:2] == (False, "WALGapFound")
    empty = continuity.of_inventory(replace(_inventory({3, 4}, None), gaps=()), NOW)
    assert continuity.condition(empty) == (
        False, "NothingRecoverable", "no base backup with all the WAL it needs is in the repository"
    )
    assert "firstRecoverableTime" not in continuity.status(empty)
    gauges = _gauges(empty)
    assert (gauges[continuity.LAST], gauges[continuity.WINDOW]) == (0, 0)
    assert gauges[continuity.VERIFIED] == NOW.timestamp()
