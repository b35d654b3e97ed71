"""`stashplan apply --watch` as a process: it applies, reports iterations, and stops cleanly on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stashplan.cluster.local.store import LocalCluster
from tests.fixtures.examples import copy_examples


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_watch_loop_applies_then_exits_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    copy_examples(tmp_path / "m", tmp_path / "demo")
    state = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stashplan", "apply", "--watch", "--interval", "0.5", "-f", str(tmp_path / "m"),
         "--state", str(state)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if state.exists() and LocalCluster(state).list("CronJob", "demo"):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the loop did not apply the manifests")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert '"summary"' in out  # one JSON line per iteration that changed something (stdout is not a terminal)
    assert "stash-trigger-app-db-backup" in out


def test_a_failing_iteration_is_reported_backed_off_and_the_loop_continues(tmp_path: Path) -> None:
    from stashplan.api import builtin_addons, load_paths
    from stashplan.operator.loop import LoopContext, StopFlag, run_loop

    cluster = LocalCluster(tmp_path / "state.db")
    manifests = load_paths([copy_examples(tmp_path / "m", tmp_path / "demo")])
    calls = {"n": 0}
    errors: list[tuple[str, float]] = []

    def flaky_manifests() -> list[dict]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("manifests folder is on a disconnected share")
        return manifests

    stop = StopFlag()
    run_loop(LoopContext(cluster, 0.01, load_manifests=flaky_manifests, addons=builtin_addons(), stop=stop,
                         report_error=lambda exc, delay: errors.append((str(exc), delay)), max_iterations=2))
    assert errors == [("manifests folder is on a disconnected share", 0.02)]  # backed off: 2x the interval
    assert cluster.list("CronJob", "demo")  # the next iteration applied
