"""Orphans in local mode: what stashplan applied earlier and the manifests no longer hold is listed, never
"No changes"; `--prune` destroys it (and what it implied), then the plan settles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.cluster.local.store import LocalCluster

EXAMPLES = Path(__file__).resolve().parents[2] / "specs" / "examples" / "local-sqlite"
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_removed_configuration_is_listed_then_pruned_with_its_cronjob(tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, folder)
    state = str(tmp_path / "state.db")
    code, out = cli("apply", "-f", str(folder), "--state", state, "--auto-approve")
    assert code == 0, out

    (folder / "backupconfiguration.yaml").unlink()
    code, out = cli("plan", "-f", str(folder), "--state", state, "--detailed-exitcode")
    assert code == 2, out
    assert "No changes. The cluster matches" not in out
    assert "? BackupConfiguration/demo/app-db-backup  (no longer in the manifests)" in out
    code, out = cli("plan", "-f", str(folder), "--state", state, "--json")
    assert code == 0, out
    listed = json.loads(out)["orphans"]
    assert [o["address"] for o in listed] == ["BackupConfiguration/demo/app-db-backup"]

    code, out = cli("plan", "-f", str(folder), "--state", state, "--prune", "--detailed-exitcode")
    assert code == 2, out
    assert "- BackupConfiguration/demo/app-db-backup will be destroyed" in out
    assert "- CronJob/demo/stash-trigger-app-db-backup will be destroyed" in out
    assert "? BackupConfiguration" not in out
    code, out = cli("apply", "-f", str(folder), "--state", state, "--prune", "--auto-approve")
    assert code == 0, out

    cluster = LocalCluster(state)
    try:
        assert cluster.list("BackupConfiguration", "demo") == []
        assert cluster.list("CronJob", "demo") == []
        assert [r["metadata"]["name"] for r in cluster.list("Repository", "demo")] == ["local-repo"]
    finally:
        cluster.close()
    code, out = cli("plan", "-f", str(folder), "--state", state, "--detailed-exitcode")
    assert code == 0, out


def test_prune_without_manifests_is_refused(tmp_path: Path) -> None:
    code, out = cli("plan", "--prune", "--state", str(tmp_path / "s.db"))
    assert code == 1
    assert "--prune needs -f" in out
