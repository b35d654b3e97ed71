"""The README's metric list is the code's: every metric the pushes and the operator's /metrics export, with
Stash's legacy twin where there is one, and the screenshot it links exists."""

from __future__ import annotations

from pathlib import Path

from stashplan.metric_list import BEGIN, END, markdown, rows
from tests.fixtures.prometheus import exported

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_metric_list_is_generated_from_the_code() -> None:
    text = README.read_text()
    assert BEGIN in text and END in text, "README has no generated metric list"
    block = text[text.index(BEGIN):text.index(END) + len(END)] + "\n"
    assert block == markdown(), "README's metric list is stale: paste `python -m stashplan.metric_list` into it"


def test_the_list_names_every_exported_metric() -> None:
    listed = {name for name, legacy, *_ in rows()} | {legacy.strip("`") for _, legacy, *_ in rows() if legacy}
    bases = listed | {n.removesuffix("_total") for n in listed}
    samples = ("", "_bucket", "_count", "_sum", "_created")  # a histogram's and a counter's sample names
    missing = {n for n in exported() if not any(n.removesuffix(s) in bases for s in samples if n.endswith(s))}
    missing -= {"push_time_seconds", "push_failure_time_seconds"}  # the Pushgateway's own
    assert not missing, missing
    assert ("stash_appscode_com_backupsession_success", "`stash_backup_session_success`") in {r[:2] for r in rows()}


def test_readme_shows_the_status_screenshot() -> None:
    assert "![stashplan status](docs/status.png)" in README.read_text()
    assert (README.parent / "docs" / "status.png").is_file()
