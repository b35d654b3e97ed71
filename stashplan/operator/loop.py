"""The loop (`apply --watch`): iterations repeated until stopped, woken by watch events or a timer, one leader
at a time in a cluster. Everything it needs comes in one frozen LoopContext."""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from stashplan.cluster.base import Cluster
from stashplan.desired.compute import Settings
from stashplan.desired.scope import Scope, narrow
from stashplan.errors import LeadershipLost
from stashplan.operator.incremental import INFORMED_KINDS, Incremental
from stashplan.operator.informer import Informer
from stashplan.operator.iteration import Iteration, LocalControllers, gc_paused, run_once
from stashplan.operator.loop_metrics import RECEIVER_LABELS, observe
from stashplan.operator.phase_log import PhaseLog

if TYPE_CHECKING:  # the loop's parts; a one-shot plan or apply starts without importing them
    from stashplan.operator.health import HealthServer
    from stashplan.operator.leader import LeaderElector

log = logging.getLogger("stashplan.operator.loop")


class StopFlag:
    """A stop request from SIGINT/SIGTERM (or a test); the loop finishes its iteration and returns.

    The signal handler only records the request: the C-level handler writes to a wakeup pipe that
    `wait` selects on, so no lock is ever taken inside a handler (an Event there can deadlock)."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        os.set_blocking(self._r, False)

    def set(self) -> None:
        self.requested = True
        try:
            os.write(self._w, b"\0")
        except BlockingIOError:  # the pipe is full: a wake-up is already pending
            pass

    def is_set(self) -> bool:
        return self.requested

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` s, returning at once (True) when a stop is requested."""
        if not self.requested and timeout > 0:
            select.select([self._r], [], [], timeout)
        return self.requested

    def install(self) -> None:
        """Handle SIGINT and SIGTERM (main thread only)."""
        def handler(signum: int, frame: FrameType | None) -> None:
            self.requested = True
            self.signum = signum

        signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _no_manifests() -> Sequence[dict]:
    return ()


def _ignore_iteration(it: Iteration) -> None:
    pass


def _ignore_error(exc: Exception, delay: float) -> None:
    pass


@dataclass(frozen=True)
class LoopContext:
    """What one loop runs with. Only `cluster` and `interval` are required."""

    cluster: Cluster
    interval: float  # seconds between iterations (the longest wait without a wake-up)
    load_manifests: Callable[[], Sequence[dict]] = _no_manifests  # re-read every iteration (-f files)
    addons: Sequence[dict] = ()
    settings: Settings = field(default_factory=Settings)
    controllers: LocalControllers | None = None  # local mode: the cron and job controllers, ticked each iteration
    namespace: str | None = None
    stop: StopFlag = field(default_factory=StopFlag)
    report: Callable[[Iteration], None] = _ignore_iteration  # each iteration that changed something
    report_error: Callable[[Exception, float], None] = _ignore_error  # a failed iteration and the back-off
    max_iterations: int | None = None
    leader: LeaderElector | None = None  # only the holder of the Lease plans and applies
    health: HealthServer | None = None
    watch_wakeups: bool = False  # kube mode: an informer cache kept current by watches, incremental iterations
    resync: float = 300.0  # seconds between full relists and plans with watch_wakeups


def run_loop(ctx: LoopContext) -> int:
    """Repeat plan+apply until stopped. A failing iteration is reported, backed off, and retried.

    With a leader, the Lease is renewed on its own timer; only its holder plans and applies, and apply stops
    writing as soon as the holder can no longer be sure it still holds it. With `watch_wakeups` (kube mode),
    reads come from an informer cache kept current by watches: the wait between iterations ends early on a change,
    an iteration plans only what changed, and a full relist and plan happen every `resync` seconds.
    """
    stop, leader, health = ctx.stop, ctx.leader, ctx.health
    failures = 0
    iterations = 0
    wait = min(ctx.interval, leader.lease_seconds / 3) if leader else ctx.interval
    incremental: Incremental | None = None
    phases = PhaseLog()
    refused: set[str] = set()  # each refused or Invalid object's error line is logged once (the rest still runs)
    if leader:
        leader.start_renewing()
    may_write = leader.still_leading if leader else None
    try:
        while not stop.is_set():
            iterations += 1
            delay = wait
            leading = leader.still_leading() if leader else True
            if not leading and incremental is not None:
                incremental.informer.close()  # a leader again later starts from a fresh cache
                incremental = None
            if leading:
                started = time.monotonic()
                try:
                    if ctx.watch_wakeups and incremental is None:
                        incremental = Incremental(Informer(ctx.cluster, INFORMED_KINDS).start(), resync=ctx.resync)
                    if incremental is not None:
                        with gc_paused():
                            plan, result = incremental.run_once(manifests=ctx.load_manifests(), addons=ctx.addons,
                                                                settings=ctx.settings, namespace=ctx.namespace,
                                                                may_write=may_write)
                        it = Iteration(plan, result)
                    else:
                        it = run_once(ctx.cluster, manifests=ctx.load_manifests(), addons=ctx.addons,
                                      settings=ctx.settings, controllers=ctx.controllers, namespace=ctx.namespace,
                                      may_write=may_write)
                    for line in it.plan.refusals:
                        if line not in refused:
                            refused.add(line)
                            log.error("%s", line)
                    source = incremental.informer if incremental is not None else ctx.cluster
                    configs, sessions, deployments = _in_scope(source, ctx)
                    for line in phases.observe(sessions):
                        log.info("%s", line)
                    failures = 0
                    if health:
                        health.heartbeat(leader=True)
                        health.observe(observe(configs, sessions, deployments))
                        health.mark_iteration(True, Counter(c.action.value for c in it.result.applied),
                                              time.monotonic() - started)
                    if it.changed:
                        ctx.report(it)
                except LeadershipLost as exc:
                    log.warning("%s", exc)
                    if incremental is not None:
                        incremental.informer.close()
                        incremental = None
                except Exception as exc:
                    failures += 1
                    delay = min(60.0, ctx.interval * 2 ** min(failures, 6))
                    log.exception("iteration failed")
                    if health:
                        health.mark_iteration(False, {}, time.monotonic() - started, type(exc).__name__)
                    ctx.report_error(exc, delay)
            elif health:
                health.heartbeat(leader=False)
            if ctx.max_iterations is not None and iterations >= ctx.max_iterations:
                break
            if incremental is not None and leading and not failures:
                incremental.informer.wait(delay, stop)
            else:
                _sleep(delay, stop, ctx.controllers)
    finally:
        if incremental is not None:
            incremental.informer.close()
        if stop.signum is not None:
            log.info("signal %s received; stopping", stop.signum)
        if ctx.controllers:
            for line in ctx.controllers.stop():
                log.info("%s", line)
        if leader:
            leader.release()
    return 0


def _in_scope(source: Cluster, ctx: LoopContext) -> tuple[list[dict], list[dict], list[dict]]:
    """The BackupConfigurations and the sessions the loop logs phases and metrics of: those in its scope (another
    Stash operator reports on the rest); and the Deployments (loop_metrics keeps the scope's WAL receivers), none
    without a Pushgateway URL: receivers then push no heartbeat, and saying they should would raise alerts."""
    found: dict[str, Sequence[dict]] = {kind: source.list(kind, ctx.namespace)
                                        for kind in ("BackupConfiguration", "BackupSession", "RestoreSession")}
    if ctx.settings.scope is not Scope.ALL:
        found, _ = narrow({**found, "Namespace": source.list("Namespace")}, ctx.settings.scope)
    return (list(found["BackupConfiguration"]), [*found["BackupSession"], *found["RestoreSession"]],
            list(source.list("Deployment", ctx.namespace, RECEIVER_LABELS)) if ctx.settings.pushgateway_url else [])


def _sleep(delay: float, stop: StopFlag, controllers: LocalControllers | None) -> None:
    """Wait `delay` seconds, waking early when a local Job finishes or a stop is requested."""
    end = time.monotonic() + delay
    while time.monotonic() < end and not stop.is_set():
        if controllers and any(r.done.is_set() for r in controllers.jobs.runs.values()):
            return
        stop.wait(min(0.1, max(0.0, end - time.monotonic())))
