"""Sizes for humans in binary units, as restic prints them ("512 B", "1.5 KiB", "10.2 MiB").

Layer: a shared leaf; imports nothing of stashplan.
"""

from __future__ import annotations


def human_size(n: float, digits: int = 1) -> str:
    """`n` bytes in B, KiB, MiB, GiB or TiB (powers of 1024) with `digits` decimals, whole bytes below 1 KiB.
    The CLI prints 1 digit; session and Repository status fields 3, as Stash shows restic's ("1.234 KiB")."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.{digits}f} {unit}"
        n /= 1024
    return f"{n:.{digits}f} TiB"
