"""Byte sizes for humans (stashplan.units): the CLI's one decimal, the status fields' three as Stash shows them."""

from __future__ import annotations

from stashplan.units import human_size


def test_sizes_use_binary_units_with_one_decimal_by_default() -> None:
    sizes = [0, 1023, 1536, 10 * 1024**2 + 200 * 1024, 5 * 1024**3, 3 * 1024**5]
    assert [human_size(n) for n in sizes] == ["0 B", "1023 B", "1.5 KiB", "10.2 MiB", "5.0 GiB", "3072.0 TiB"]


def test_status_sizes_carry_three_decimals_as_stash_shows_them() -> None:
    assert [human_size(512, 3), human_size(1264, 3), human_size(2 * 1024**2, 3)] == [
        "512 B",
        "1.234 KiB",
        "2.000 MiB",
    ]


def test_durations_print_as_go_prints_them() -> None:
    from datetime import timedelta

    from stashplan.units import go_duration, whole_seconds

    assert [go_duration(s) for s in (0, 0.85, 3.25, 125.5, 3603)] == ["0s", "850ms", "3.25s", "2m5.5s", "1h0m3s"]
    assert [whole_seconds(timedelta(seconds=s)) for s in (0.4, 45, 3723)] == ["0s", "45s", "1h2m3s"]


def test_durations_parse_as_kubernetes_reads_them_and_round_trip() -> None:
    from datetime import timedelta

    import pytest

    from stashplan.units import go_duration, parse_go_duration

    assert parse_go_duration("1h30m") == timedelta(minutes=90)
    assert parse_go_duration("1.5h") == timedelta(minutes=90)
    assert parse_go_duration("250ms") == timedelta(milliseconds=250)
    for seconds in (0.85, 45, 125.5, 3603):
        assert parse_go_duration(go_duration(seconds)).total_seconds() == pytest.approx(seconds)
    with pytest.raises(ValueError, match="not a valid duration"):
        parse_go_duration("10 minutes")
