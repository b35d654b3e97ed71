"""Units for people, declared once: sizes in binary units as restic prints them ("512 B", "1.5 KiB"), and
durations as Go writes and reads them ("850ms", "1h2m3s", "1.5h").

Layer: a shared leaf; imports nothing of stashplan.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(?:(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def human_size(n: float, digits: int = 1) -> str:
    """`n` bytes in B, KiB, MiB, GiB or TiB (powers of 1024) with `digits` decimals, whole bytes below 1 KiB.
    The CLI prints 1 digit; session and Repository status fields 3, as Stash shows restic's ("1.234 KiB")."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.{digits}f} {unit}"
        n /= 1024
    return f"{n:.{digits}f} TiB"


def go_duration(seconds: float) -> str:
    """Like Go's time.Duration String: "0s", "850ms", "3.25s", "2m5.5s", "1h0m3s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    sec = f"{s:.3f}".rstrip("0").rstrip(".") + "s"
    return (f"{int(h)}h" if h else "") + (f"{int(m)}m" if h or m else "") + sec


def whole_seconds(delta: timedelta) -> str:
    """A duration in whole seconds, as Go prints it: "1h2m3s", "45s"."""
    return go_duration(int(delta.total_seconds()))


def parse_go_duration(value: str) -> timedelta:
    """A Go/Kubernetes duration such as "30m", "1h30m", "90s" or "1.5h" (ValueError otherwise)."""
    text = value.strip()
    if text in ("0", "0s"):
        return timedelta(0)
    if not _DURATION.match(text):
        raise ValueError(
            f"{value!r} is not a valid duration: use a number with a unit (h, m, s, ms), e.g. '30m' or '1h30m'"
        )
    return timedelta(seconds=sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PART.findall(text)))
