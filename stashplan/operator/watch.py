"""`apply --watch`: the wiring of the loop — the state lock (local mode), the cluster, the local controllers,
leader election, the health endpoint — and its reports: a line per iteration that changed something (one JSON
object per line when stdout is not a terminal, in the shape of operator/logs.py)."""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from stashplan import __version__
from stashplan.cluster.factory import ClusterSettings, open_cluster
from stashplan.desired.compute import Settings
from stashplan.operator.iteration import Iteration, LocalControllers
from stashplan.operator.logs import json_line
from stashplan.operator.loop import LoopContext, StopFlag, run_loop


@dataclass(frozen=True)
class WatchOptions:
    """The loop's options from the command line."""

    interval: float
    iterations: int | None
    leader_elect: bool
    lease_namespace: str
    health_port: int | None
    resync: float = 300.0
    wait_for_lock: bool = False


@dataclass(frozen=True)
class Reporter:
    """Where the loop's reports go: plain lines on a terminal, JSON lines otherwise."""

    out: TextIO
    err: TextIO
    structured: bool

    def iteration(self, it: Iteration) -> None:
        if self.structured:
            self._write(self.out, json_line(
                "info", "stashplan.operator.loop", "iteration", summary=it.summary(),
                controller=it.controller_changes,
                applied=[{"action": ch.action.value, "address": ch.address, "reason": ch.reason}
                         for ch in it.result.applied],
                deferred=[{"address": ch.address, "why": why} for ch, why in it.result.skipped]))
            return
        lines = [f"[{datetime.now(UTC):%H:%M:%S}] {it.summary()}"]
        lines += [f"           {line}" for line in it.controller_changes]
        lines += [f"           {ch.action.symbol} {ch.address}: {ch.reason}" for ch in it.result.applied]
        self._write(self.out, "\n".join(lines))

    def error(self, exc: Exception, delay: float) -> None:
        if self.structured:
            self._write(self.err, json_line("error", "stashplan.operator.loop", "iteration failed", error=str(exc),
                                            retry_in=delay))
        else:
            self._write(self.err, f"iteration failed: {exc}; retrying in {delay:.0f}s")

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(text + "\n")
        stream.flush()


def watch(cs: ClusterSettings, load_manifests: Callable[[], Sequence[dict]], addons: Sequence[dict],
          namespace: str | None, options: WatchOptions, settings: Settings) -> int:
    """Run the loop until a signal stops it (or `options.iterations` ran). Local mode holds the state lock."""
    gc.enable()  # a long-running process: an iteration pauses the collector only while it plans
    load_manifests()  # fail fast on bad manifests before starting
    stop = StopFlag()
    stop.install()
    lock = None
    if cs.mode == "local":  # one loop per state database
        from stashplan.cluster.local.state_lock import StateLock

        lock = StateLock(cs.state)
        if not lock.acquire(wait=options.wait_for_lock, cancelled=stop.is_set,
                            on_wait=lambda holder: print(f"waiting for {holder} to release {cs.state}",
                                                         file=sys.stderr, flush=True)):
            return 0
    try:
        return _watch_locked(cs, load_manifests, addons, namespace, options, settings, stop)
    finally:
        if lock is not None:
            lock.release()


def _watch_locked(cs: ClusterSettings, load_manifests: Callable[[], Sequence[dict]], addons: Sequence[dict],
                  namespace: str | None, options: WatchOptions, settings: Settings, stop: StopFlag) -> int:
    from stashplan.operator.health import HealthServer
    from stashplan.operator.leader import LeaderElector

    cluster = open_cluster(cs)
    lease_cluster = open_cluster(cs) if options.leader_elect else None  # the lease is renewed from its own thread
    controllers = LocalControllers.create(cluster, cs.env(), cs.state.parent / "logs") if cs.mode == "local" else None
    identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    leader = (LeaderElector(lease_cluster, "stashplan-operator", options.lease_namespace, identity)
              if lease_cluster is not None else None)
    health = HealthServer(options.health_port) if options.health_port is not None else None
    if health:
        health.start()
    reporter = Reporter(sys.stdout, sys.stderr, structured=not sys.stdout.isatty())
    print(f"stashplan {__version__}: watching ({cs.mode} mode" + (f", state {cs.state}" if cs.mode == "local" else "")
          + f", every {options.interval:g}s); Ctrl-C stops.", flush=True)
    ctx = LoopContext(cluster, options.interval, load_manifests=load_manifests, addons=addons, settings=settings,
                      controllers=controllers, namespace=namespace, stop=stop, report=reporter.iteration,
                      report_error=reporter.error, max_iterations=options.iterations, leader=leader, health=health,
                      watch_wakeups=cs.mode == "kube", resync=options.resync)
    try:
        return run_loop(ctx)
    finally:
        if health:
            health.stop()
        cluster.close()
        if lease_cluster is not None:
            lease_cluster.close()
