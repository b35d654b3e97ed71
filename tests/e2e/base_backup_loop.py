"""Helper for the local-mode PITR tests (not a plugin, so that only they import the CLI and the loop): run a
triggered session of a base-backup BackupConfiguration to its end."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner

from stashplan.api import builtin_addons
from stashplan.cli import app
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once


def triggered_base_backup(cluster: LocalCluster, controllers: LocalControllers, objs: Sequence[dict], state: Path,
                          logs: Path, ns: str, config: str = "pg-base") -> dict:
    """Trigger a session of BackupConfiguration `config` and run the loop until it is Succeeded (the Jobs' logs
    are shown when it Failed); the BackupSession then."""
    triggered = CliRunner().invoke(app, ["trigger", config, "-n", ns, "--state", str(state)])
    assert triggered.exit_code == 0, triggered.output
    name = triggered.output.split()[1].split("/")[1]  # "backupsession demo/pg-base-<time> created"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
        session = cluster.get("BackupSession", ns, name)
        phase = (session.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            assert phase == "Succeeded", "".join(p.read_text() for p in logs.glob("*.log"))[-3000:]
            return session
        controllers.jobs.wait_all(0.3)
    raise AssertionError(f"the base backup {name} did not finish")
