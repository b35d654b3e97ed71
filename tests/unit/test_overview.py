"""The pieces of `stashplan status` rows: sizes read back from status fields, ages, sparklines, freshness."""

from __future__ import annotations

from stashplan.overview import Freshness, freshness, parse_size, sparkline
from stashplan.overview_render import span


def test_status_sizes_read_back_to_bytes() -> None:
    assert parse_size("1.500 KiB") == 1536 and parse_size("12 B") == 12 and parse_size("2 GiB") == 2 << 30
    assert parse_size("") is None and parse_size("lots") is None


def test_spans_show_the_largest_unit_and_the_next() -> None:
    assert [span(s) for s in (0, 40, 65, 7200, 7260, 90000, None)] == ["0s", "40s", "1m5s", "2h", "2h1m", "1d1h", "-"]


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([10, 20, 30]) == "▁▅█" and sparkline([5, 5]) == "▁▁" and sparkline([7]) == ""


def test_freshness_against_the_schedule_and_the_alert_margin() -> None:
    hour = 3600.0
    assert freshness(0.5 * hour, hour, False) is Freshness.OK
    assert freshness(1.5 * hour, hour, False) is Freshness.LATE  # within 1 h + 1 h
    assert freshness(2.5 * hour, hour, False) is Freshness.OVERDUE
    assert freshness(None, hour, False) is Freshness.NEVER and freshness(None, hour, True) is Freshness.PAUSED
