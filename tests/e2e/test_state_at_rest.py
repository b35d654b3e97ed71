"""Secrets at rest in local mode: the state file is 0600 in a 0700 folder, and its change log keeps only a
digest of Secret values, so a rotated password is not kept there."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from pathlib import Path

from typer.testing import CliRunner

from stashplan.cli import app
from tests.fixtures.examples import copy_examples

runner = CliRunner()
OLD = "not-a-real-password-change-me"


def test_state_is_private_and_its_change_log_holds_no_secret_values(tmp_path: Path) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    state = tmp_path / "project" / ".stashplan" / "state.db"
    assert runner.invoke(app, ["apply", "-f", str(manifests), "--state", str(state), "--auto-approve"]).exit_code == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    for extra in state.parent.glob("state.db-*"):
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra
    secret = manifests / "repository.yaml"
    secret.write_text(secret.read_text().replace(OLD, "the-rotated-password"))
    result = runner.invoke(app, ["apply", "-f", str(manifests), "--state", str(state), "--auto-approve"])
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(state)
    log = [body for (body,) in db.execute("SELECT body FROM changes WHERE kind='Secret'")]
    assert len(log) == 2  # created, then rotated: both changes are there to wake watchers ...
    assert len({json.loads(body)["dataDigest"] for body in log}) == 2  # ... told apart by their digest
    for value in (OLD, "the-rotated-password"):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert not any(form in body for body in log), f"{form} is in the change log"
    db.close()


def _old_style_secret_in_log(state: Path, rv: int) -> None:
    """What a version before the digest wrote: a Secret's values in the change log."""
    db = sqlite3.connect(state)
    db.execute("INSERT INTO changes (rv, type, kind, body) VALUES (?,?,?,?)",
               (rv, "ADDED", "Secret", json.dumps({"apiVersion": "v1", "kind": "Secret",
                                                   "metadata": {"name": "old", "namespace": "demo"},
                                                   "data": {"RESTIC_PASSWORD": base64.b64encode(OLD.encode()).decode()}})))
    db.commit()
    db.close()


def _log_text(state: Path) -> str:
    db = sqlite3.connect(state)
    try:
        return " ".join(body for (body,) in db.execute("SELECT body FROM changes WHERE kind='Secret'"))
    finally:
        db.close()


def test_a_state_file_of_an_older_version_is_scrubbed_once_and_then_not_scanned_again(tmp_path: Path) -> None:
    from stashplan.cluster.local.store import LocalCluster

    state = tmp_path / "state.db"
    LocalCluster(state).close()
    db = sqlite3.connect(state)
    db.execute("PRAGMA user_version = 0")  # as every file older versions wrote
    db.commit()
    db.close()
    _old_style_secret_in_log(state, 1_000_001)
    encoded = base64.b64encode(OLD.encode()).decode()
    assert encoded in _log_text(state)
    result = runner.invoke(app, ["get", "secret", "--state", str(state)])  # any command that opens the state
    assert result.exit_code == 0, result.output
    assert encoded not in _log_text(state) and "dataDigest" in _log_text(state)
    # The file is marked as scrubbed: later opens skip the scan of the whole change log (what only a version
    # before the digest could have written is no longer looked for).
    _old_style_secret_in_log(state, 1_000_002)
    LocalCluster(state).close()
    assert encoded in _log_text(state)
