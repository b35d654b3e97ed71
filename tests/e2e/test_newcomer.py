"""Small things a newcomer trips on: `--help` shows flags as typer prints them (TEXT, PATH, bare flags, no
<bool>/<str> placeholders), and `stashplan get` finds the state upward as git finds `.git`, never creating an
empty one elsewhere, and says when the state it uses holds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stashplan.cluster.local.store import LocalCluster
from tests.fixtures.examples import copy_examples

ENV = {k: v for k, v in os.environ.items() if not k.startswith("STASHPLAN_")} | {"COLUMNS": "200"}


def stashplan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stashplan", *args], capture_output=True, text=True, cwd=cwd,
                          env={**ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}, timeout=60)


@pytest.mark.parametrize("command", ["plan", "apply", "get", "describe"])
def test_help_shows_flags_without_placeholders(command: str) -> None:
    proc = stashplan(command, "--help")
    assert proc.returncode == 0, proc.stderr
    for placeholder in ("<bool>", "<str>", "<path>", "<int>", "<float>", "<list"):
        assert placeholder not in proc.stdout, proc.stdout
    lines = {ln.split()[1]: ln for ln in proc.stdout.splitlines() if ln.startswith("│ --")}
    assert "BOOLEAN" not in lines["--debug"] and "Show tracebacks on errors." in lines["--debug"]
    assert "PATH" in lines["--state"]
    assert "(default: the nearest .stashplan/state.db here or in a parent" in " ".join(proc.stdout.split())


def test_get_finds_the_state_upward_and_never_creates_one_elsewhere(tmp_path: Path) -> None:
    project = tmp_path / "project"
    manifests = copy_examples(project / "backups", tmp_path / "demo")
    applied = stashplan("apply", "-f", str(manifests), "--auto-approve", cwd=project)
    assert applied.returncode == 0, applied.stderr
    assert (project / ".stashplan" / "state.db").is_file()
    deep = project / "backups" / "sub"
    deep.mkdir()
    found = stashplan("get", "backupconfiguration", "-n", "demo", cwd=deep)
    assert found.returncode == 0, found.stderr
    assert "app-db-backup" in found.stdout
    assert not (deep / ".stashplan").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = stashplan("get", "backupsession", cwd=elsewhere)
    assert lost.returncode == 1
    assert f"no local state: {elsewhere / '.stashplan' / 'state.db'} does not exist" in " ".join(lost.stderr.split())
    assert not (elsewhere / ".stashplan").exists()


def test_get_says_which_state_it_uses_when_it_is_empty(tmp_path: Path) -> None:
    state = tmp_path / "empty" / "state.db"
    LocalCluster(state).close()
    proc = stashplan("get", "backupsession", "--state", str(state))
    assert proc.returncode == 0
    assert f"note: the state file {state} holds no objects yet" in " ".join(proc.stderr.split())
