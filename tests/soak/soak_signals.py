"""`make soak`: SIGINT at random moments of the loop's cycle never hangs it (a handler that takes a lock
deadlocks about one time in twenty); every loop ends within 5 s."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from stashplan.cluster.local.store import LocalCluster
from tests.e2e.test_loop_crash import setup, start_loop, wait_until

ROUNDS = 10
LOOPS = 4


def test_signals_at_any_moment_of_the_cycle_never_hang_the_loop(tmp_path: Path) -> None:
    """Rounds of loops with a tiny interval, each signalled at a random moment: each ends within 5 s."""
    manifests, _, _ = setup(tmp_path, seconds=1)
    for r in range(ROUNDS):
        loops = []
        for i in range(LOOPS):
            s = tmp_path / f"r{r}-{i}" / "state.db"
            loops.append((s, start_loop(manifests, s, tmp_path / f"r{r}-{i}.log", "--interval", "0.01")))
        try:
            for s, _proc in loops:
                wait_until("a loop to apply", lambda s=s: s.exists() and LocalCluster(s).list("CronJob", "demo"))
            for _, proc in loops:
                time.sleep(random.uniform(0, 0.05))
                proc.send_signal(random.choice([signal.SIGINT, signal.SIGTERM]))
                sent = time.monotonic()
                proc.wait(timeout=5)
                assert proc.returncode == 0
                assert time.monotonic() - sent < 5
        finally:
            for _, proc in loops:
                if proc.poll() is None:
                    proc.kill()
