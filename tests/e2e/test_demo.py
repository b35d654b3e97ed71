"""`make demo` is a documented example, so it is a test: backup and restore of SQLite in local mode — in the
test's own folder, never in /tmp/stashplan-demo (the user's demo data)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO_DIR = Path("/tmp/stashplan-demo")


def test_demo_backs_up_and_restores_identical_rows_in_its_own_folder(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "stashplan.demo", "--work", str(work)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())  # the console may wrap long lines
    assert "BackupSession demo/app-db-backup-" in out and ": Succeeded" in out
    assert "RestoreSession demo/app-db-restore: Succeeded" in out
    assert "customers: 2000 rows in app.db, 2000 in restored.db -> identical" in out
    assert "orders: 20000 rows in app.db, 20000 in restored.db -> identical" in out
    assert "not-a-real-password" not in proc.stdout + proc.stderr
    assert (work / "restored.db").exists() and (work / "state.db").exists() and (work / "repository").is_dir()
    assert str(DEMO_DIR) not in proc.stdout + proc.stderr
