"""Progress output: periodic plain lines when not on a terminal, a rich bar on one."""

from __future__ import annotations

import io

from stashplan.repository.progress import progress_reporter


def test_plain_progress_prints_bytes_and_rate_lines() -> None:
    out = io.StringIO()
    with progress_reporter("backup", stream=out, tty=False, every=0.0) as report:
        report(3 * 1024 * 1024)
    line = out.getvalue().strip()
    assert line.startswith("backup: 3.0 MiB done, ") and line.endswith("/s")


def test_plain_progress_stays_quiet_between_intervals() -> None:
    out = io.StringIO()
    with progress_reporter("restore", stream=out, tty=False) as report:
        for n in range(100):
            report(n)
    assert out.getvalue() == ""


def test_terminal_progress_renders_a_rich_bar_and_clears_it() -> None:
    out = io.StringIO()
    with progress_reporter("backup", stream=out, tty=True) as report:
        report(1024)
    assert "backup" in out.getvalue()

