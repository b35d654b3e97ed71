"""Progress of long repository operations: a rich bar (bytes, rate) on a terminal, else a plain log line
every few seconds. The only module of the repository package that renders.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from stashplan.units import human_size

PLAIN_EVERY = 5.0


@contextmanager
def progress_reporter(
    label: str, *, total: int | None = None, stream: TextIO | None = None, tty: bool | None = None,
    every: float = PLAIN_EVERY,
) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking the bytes done so far; renders on `stream` (stderr by default), off a
    terminal as one plain line every `every` seconds."""
    out = stream or sys.stderr
    is_tty = out.isatty() if tty is None else tty
    start = time.monotonic()
    if is_tty:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(file=out, force_terminal=True),
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=total)
            yield lambda done: bar.update(task, completed=done)
        return
    last = [start, 0]

    def plain(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            rate = done / max(now - start, 1e-9)
            of = f" of {human_size(total)}" if total else ""
            print(f"{label}: {human_size(done)}{of} done, {human_size(rate)}/s", file=out, flush=True)
            last[0] = now
        last[1] = done

    yield plain
