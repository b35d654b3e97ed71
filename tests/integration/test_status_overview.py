"""`stashplan status` over a local-mode world after real backups: a daily configuration backed up twice (its
database grew between), a five-minute one whose only success is two hours old, one that always failed, one
paused — the rows, the table a person reads, and `-o json` through the CLI."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.overview import Freshness, Row, rows
from stashplan.overview_render import render
from stashplan.transfer.run import TransferOptions, backup
from tests.fixtures.transfer import StashWorld

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "status.png"  # rewritten by `make docs` (STASHPLAN_WRITE_DOCS=1)


@pytest.fixture
def world(stash_world: StashWorld, sqlite_file: Path, tmp_path: Path) -> Iterator[StashWorld]:
    w, opts = stash_world, TransferOptions(database="sqlite")
    w.appbinding("app-db", f"sqlite://{sqlite_file}", app_type="stashplan.dev/sqlite")
    w.appbinding("gone-db", f"sqlite://{tmp_path}/missing.db", app_type="stashplan.dev/sqlite")
    w.repository()
    for name, db, schedule in (("daily", "app-db", "0 2 * * *"), ("frequent", "app-db", "*/5 * * * *"),
                               ("broken", "gone-db", "0 3 * * *"), ("on-hold", "app-db", "0 4 * * *")):
        config = w.backup_config(name, db)
        w.cluster.replace({**config, "spec": {**config["spec"], "schedule": schedule,
                                              "paused": name == "on-hold"}})
    w.backup_session("frequent", "frequent-1")
    assert backup(w.cluster, w.namespace, "frequent-1", opts).ok
    w.backup_session("daily", "daily-1")
    assert backup(w.cluster, w.namespace, "daily-1", opts).ok
    with sqlite3.connect(sqlite_file) as db:  # the database grows before the next backup
        db.executemany("INSERT INTO items(name) VALUES (?)", [(f"row-{i}" * 50,) for i in range(2000)])
    w.backup_session("daily", "daily-2")
    assert backup(w.cluster, w.namespace, "daily-2", opts).ok
    w.backup_session("broken", "broken-1")
    assert not backup(w.cluster, w.namespace, "broken-1", opts).ok
    yield w


def overview(w: StashWorld, now: datetime) -> dict[str, Row]:
    c = w.cluster
    found = rows(c.list("BackupConfiguration"), c.list("BackupSession"), c.list("Repository"), now)
    return {r.name: r for r in found}


def test_rows_colour_each_last_success_against_its_own_schedule(world: StashWorld) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    got = overview(world, later)
    assert list(got) == ["broken", "daily", "frequent", "on-hold"]
    assert got["daily"].freshness is Freshness.OK  # 2 h old, daily schedule
    assert got["frequent"].freshness is Freshness.OVERDUE  # 2 h old, every 5 minutes (+1 h margin)
    assert got["broken"].freshness is Freshness.NEVER and got["broken"].last_phase == "Failed"
    assert got["on-hold"].freshness is Freshness.PAUSED and got["on-hold"].next_run is None
    assert got["daily"].interval == 86400 and got["frequent"].interval == 300
    assert got["daily"].next_run is not None and got["daily"].next_run.hour == 2
    daily = got["daily"]
    assert len(daily.sizes) == 2 and daily.sizes[1] > daily.sizes[0]  # growth from the sessions' stats
    assert daily.stored_bytes and daily.integrity is True and daily.last_duration is not None
    # a little later than the schedule's gap but within the alert's margin: late, not yet overdue
    assert overview(world, datetime.now(UTC) + timedelta(minutes=30))["frequent"].freshness is Freshness.LATE


def test_the_table_shows_age_next_run_size_growth_and_integrity(world: StashWorld) -> None:
    console = Console(record=True, width=220, force_terminal=True, color_system="truecolor")
    now = datetime.now(UTC) + timedelta(hours=2)
    render(list(overview(world, now).values()), now, console)
    text = console.export_text(styles=False, clear=False)
    lines = {line.split()[1]: line for line in text.splitlines() if line.startswith("demo ")}
    assert re.search(r" 2h(1m)? ", lines["daily"]) and "every 1d)" in lines["daily"] and "(in " in lines["daily"]
    assert "never" in lines["broken"] and "Failed" in lines["broken"]
    assert "paused" in lines["on-hold"]
    assert "ok" in lines["daily"].split()[-1] and any(c in lines["daily"] for c in "▁▂▃▄▅▆▇█")
    styled = console.export_text(styles=True)
    assert "\x1b[1;31mnever" in styled  # red
    assert re.search(r"\x1b\[32m2h(1m)? ", styled)  # green: the daily configuration's age
    assert re.search(r"\x1b\[1;31m2h(1m)? ", styled)  # red: the five-minute one's


def test_status_json_lists_every_configuration_for_scripts(world: StashWorld) -> None:
    result = CliRunner().invoke(app, ["status", "-o", "json", "--state", str(world.state)])
    assert result.exit_code == 0, result.output
    doc = {r["name"]: r for r in json.loads(result.output)}
    assert set(doc) == {"daily", "frequent", "broken", "on-hold"}
    assert doc["daily"]["freshness"] == "ok" and doc["daily"]["last_success"].endswith("Z")
    assert doc["broken"]["freshness"] == "never" and doc["broken"]["last_success"] is None
    assert doc["on-hold"]["freshness"] == "paused" and doc["on-hold"]["paused"] is True
    assert doc["daily"]["interval"] == 86400 and len(doc["daily"]["sizes"]) == 2
    bad = CliRunner().invoke(app, ["status", "-o", "yaml", "--state", str(world.state)])
    assert bad.exit_code == 1 and "--output must be json" in bad.output


def test_the_table_renders_from_the_terminal_into_the_readme_screenshot(world: StashWorld, tmp_path: Path) -> None:
    """The README's picture of `stashplan status`: rich records the terminal as SVG, Debian's rsvg-convert
    (librsvg2-bin, from .ci/services.sh) turns it into a PNG; `make docs` stores it as docs/status.png."""
    converter = shutil.which("rsvg-convert")
    assert converter, "rsvg-convert is not installed: run .ci/services.sh (Debian package librsvg2-bin)"
    console = Console(record=True, width=180, force_terminal=True, color_system="truecolor", file=io.StringIO())
    now = datetime.now(UTC) + timedelta(hours=2)
    render(list(overview(world, now).values()), now, console)
    svg = tmp_path / "status.svg"
    svg.write_text(console.export_svg(title="stashplan status"))
    png = tmp_path / "status.png"
    subprocess.run([converter, "--zoom", "1.5", "-o", str(png), str(svg)], check=True)
    data = png.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and width > 1000 and 200 < height < width
    if os.environ.get("STASHPLAN_WRITE_DOCS") == "1":
        shutil.copyfile(png, SCREENSHOT)
    assert SCREENSHOT.is_file(), "docs/status.png is missing: run `make docs`"
