"""`make demo` is a documented example, so it is a test: backup and restore of SQLite in local mode."""

from __future__ import annotations

import subprocess
import sys


def test_demo_backs_up_and_restores_identical_rows() -> None:
    proc = subprocess.run([sys.executable, "-m", "stashplan.demo"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = " ".join(proc.stdout.split())  # the console may wrap long lines
    assert "BackupSession demo/app-db-backup-" in out and ": Succeeded" in out
    assert "RestoreSession demo/app-db-restore: Succeeded" in out
    assert "customers: 2000 rows in app.db, 2000 in restored.db -> identical" in out
    assert "orders: 20000 rows in app.db, 20000 in restored.db -> identical" in out
    assert "not-a-real-password" not in proc.stdout + proc.stderr
