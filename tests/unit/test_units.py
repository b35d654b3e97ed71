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
