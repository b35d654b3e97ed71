"""Run `plan` in-process on one manifest file and check the promise: a plan (exit 0) or one-line errors
(exit 1), never a traceback or an unforeseen exception, and bounded memory. The click command is built once
(CliRunner would rebuild it for every input)."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import psutil
import typer

from stashplan.cli import app

MEMORY_LIMIT = 500 * 1024 * 1024
_COMMAND = typer.main.get_command(app)
_process = psutil.Process()


def invoke(args: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `stashplan ARGS`; any exception but SystemExit propagates."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = _COMMAND.main(args, prog_name="stashplan", standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue(), err.getvalue()


def plan_survives(text: str, folder: Path) -> None:
    path = folder / "manifest.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    before = _process.memory_info().rss
    code, out, err = invoke(["plan", "-f", str(path), "--state", str(folder / "state.db")])
    grown = _process.memory_info().rss - before
    assert grown < MEMORY_LIMIT, f"plan grew the process by {grown >> 20} MB"
    assert code in (0, 1), (code, out[-1000:], err[-2000:], text[:2000])
    assert "Traceback" not in out + err
    if code == 1:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert lines, text[:2000]
        assert all(ln.startswith("error: ") for ln in lines), (err[-2000:], text[:2000])
        assert "for the traceback" not in err, (err[-2000:], text[:2000])  # an unforeseen exception: a bug
