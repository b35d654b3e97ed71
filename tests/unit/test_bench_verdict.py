"""make bench's verdicts: PASS or MISS only when every interleaved round falls on one side of the target."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from harness import Goals, Spread, verdict


def test_a_range_on_one_side_of_the_target_passes_or_misses() -> None:
    assert verdict(Spread(0.90, 0.86, 0.95), 0.85, at_most=False) == "PASS"
    assert verdict(Spread(0.70, 0.60, 0.80), 0.85, at_most=False) == "MISS"
    assert verdict(Spread(0.95, 0.90, 1.00), 1.05, at_most=True) == "PASS"
    assert verdict(Spread(1.20, 1.10, 1.30), 1.05, at_most=True) == "MISS"


def test_a_range_straddling_the_target_is_within_noise_whatever_the_median() -> None:
    assert verdict(Spread(0.90, 0.80, 0.95), 0.85, at_most=False) == "within noise"
    assert verdict(Spread(0.82, 0.80, 0.95), 0.85, at_most=False) == "within noise"
    assert verdict(Spread(1.00, 0.90, 1.10), 1.05, at_most=True) == "within noise"


def test_goal_lines_carry_the_verdict_the_range_and_the_load_average() -> None:
    goals = Goals()
    goals.check("ratio", Spread(0.90, 0.80, 0.95), 0.85, at_most=False)
    goals.check("miss", Spread(0.70, 0.60, 0.80), 0.85, at_most=False)
    assert goals.lines[0].split()[:3] == ["within", "noise", "ratio:"]
    assert "0.90x (0.80-0.95)" in goals.lines[0] and "(load " in goals.lines[0]
    assert goals.missed == 1
