"""Draws `stashplan status` rows (stashplan/overview.py): a rich table whose ages are coloured against each
schedule (green within it, yellow within the alert's margin, red beyond), or JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stashplan.overview import Freshness, Row, sparkline
from stashplan.units import human_size

STYLES = {Freshness.OK: "green", Freshness.LATE: "yellow", Freshness.OVERDUE: "bold red",
          Freshness.NEVER: "bold red", Freshness.PAUSED: "dim"}
PHASE_STYLES = {"Succeeded": "green", "Failed": "red", "Running": "cyan", "Skipped": "yellow"}


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def span(seconds: float | None) -> str:
    """3d4h, 2h, 12m5s, 40s: the largest unit and the next one (unless 0)."""
    if seconds is None:
        return "-"
    secs = max(0, int(seconds))
    i = next((i for i, (_, size) in enumerate(_UNITS) if secs >= size), len(_UNITS) - 1)
    (big, big_size), rest = _UNITS[i], secs % _UNITS[i][1]
    if i == len(_UNITS) - 1:
        return f"{secs}{big}"
    small, small_size = _UNITS[i + 1]
    return f"{secs // big_size}{big}" + (f"{rest // small_size}{small}" if rest // small_size else "")


def _when(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "-"
    return f"{t:%Y-%m-%d %H:%M} (in {span((t - now).total_seconds())})" if t > now else f"{t:%Y-%m-%d %H:%M}"


def table(rows: Sequence[Row], now: datetime) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold", title_justify="left",
              title=f"Backups at {now:%Y-%m-%d %H:%M} UTC", caption=(
                  "age: green within the schedule, yellow within the alert's margin, red beyond"))
    for header in ("NAMESPACE", "CONFIGURATION", "SCHEDULE", "LAST", "LAST SUCCESS", "AGE", "NEXT RUN",
                   "DURATION", "STORED", "GROWTH", "INTEGRITY"):
        t.add_column(header, no_wrap=True)
    for r in rows:
        age = Text("paused" if r.paused else ("never" if r.age is None else span(r.age)), style=STYLES[r.freshness])
        integrity = (Text("-") if r.integrity is None
                     else Text("ok", style="green") if r.integrity else Text("FAILED", style="bold red"))
        t.add_row(
            r.namespace, r.name, r.schedule + (" (every " + span(r.interval) + ")" if r.interval else ""),
            Text(r.last_phase or "-", style=PHASE_STYLES.get(r.last_phase, "")),
            f"{r.last_success:%Y-%m-%d %H:%M}" if r.last_success else "-", age,
            "-" if r.paused else _when(r.next_run, now),
            span(r.last_duration), "-" if r.stored_bytes is None else human_size(r.stored_bytes),
            sparkline(r.sizes) or "-", integrity,
        )
    return t


def render(rows: Sequence[Row], now: datetime, console: Console, output: str = "") -> None:
    """Print the table, or with output "json" the rows as a JSON list (UTC RFC 3339 times, seconds, bytes)."""
    if output == "json":
        console.out(json.dumps([r.to_json() for r in rows], indent=2), highlight=False)  # never wrapped
    elif output:
        raise ValueError(f"--output must be json, not {output!r}")
    elif not rows:
        console.print("no BackupConfiguration found", markup=False)
    else:
        console.print(table(rows, now))
