"""One reconcile iteration (read -> plan -> apply) and the loop that repeats it (`apply --watch`)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from stashplan import plan as plan_mod
from stashplan.apply import ApplyResult, apply_plan
from stashplan.cluster.base import Cluster
from stashplan.cluster.controllers import CronScheduler, JobRunner
from stashplan.desired import Settings

log = logging.getLogger("stashplan.loop")


def read_actual(cluster: Cluster, namespace: str | None = None) -> dict[str, list[dict]]:
    """Every object the planner needs: one list call per kind, whatever the number of objects."""
    return {kind: cluster.list(kind, namespace) for kind in plan_mod.READ_KINDS}


def make_plan(
    cluster: Cluster,
    *,
    manifests: Sequence[dict] = (),
    addons: Sequence[dict] = (),
    sources: Sequence[str] = (),
    namespace: str | None = None,
    settings: Settings = Settings(),
    now: datetime | None = None,
    prune: bool = False,
) -> plan_mod.Plan:
    inputs = plan_mod.Inputs(actual=read_actual(cluster, namespace), manifests=manifests, addons=addons,
                             sources=sources, prune=prune)
    return plan_mod.build(inputs, now or datetime.now(UTC), settings)


@dataclass
class Iteration:
    plan: plan_mod.Plan
    result: ApplyResult
    controller_changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.result.applied or self.controller_changes)

    def summary(self) -> str:
        counts = self.plan.counts()
        parts = [f"{n} {k}" for k, n in counts.items() if n]
        if self.controller_changes:
            parts.append(f"{len(self.controller_changes)} controller event(s)")
        if self.result.skipped:
            parts.append(f"{len(self.result.skipped)} deferred")
        return ", ".join(parts) or "no changes"


@dataclass
class LocalControllers:
    """The CronJob and Job controllers of local mode, ticked by the loop (any Cluster works)."""

    cron: CronScheduler
    jobs: JobRunner

    @classmethod
    def create(cls, cluster: Cluster, env: Mapping[str, str], log_dir: Path) -> LocalControllers:
        return cls(CronScheduler(cluster), JobRunner(cluster, env, log_dir))

    def tick(self, now: datetime) -> list[str]:
        return self.jobs.tick(now) + self.cron.tick(now)


def run_once(
    cluster: Cluster,
    *,
    manifests: Sequence[dict] = (),
    addons: Sequence[dict] = (),
    settings: Settings = Settings(),
    controllers: LocalControllers | None = None,
    namespace: str | None = None,
    now: datetime | None = None,
) -> Iteration:
    now = now or datetime.now(UTC)
    events = controllers.tick(now) if controllers else []
    plan = make_plan(cluster, manifests=manifests, addons=addons, namespace=namespace, settings=settings, now=now)
    result = apply_plan(cluster, plan)
    if controllers:
        events += controllers.jobs.tick(now)  # start the Jobs this iteration created at once
    return Iteration(plan, result, events)


class StopFlag:
    """Set by SIGINT/SIGTERM (or a test); the loop finishes its iteration and returns."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s received; stopping after this iteration", signum)
            self.event.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def run_loop(
    cluster: Cluster,
    *,
    interval: float,
    load_manifests: Callable[[], Sequence[dict]] = lambda: (),
    addons: Sequence[dict] = (),
    settings: Settings = Settings(),
    controllers: LocalControllers | None = None,
    namespace: str | None = None,
    stop: StopFlag | None = None,
    report: Callable[[Iteration], None] = lambda it: None,
    report_error: Callable[[Exception, float], None] = lambda exc, delay: None,
    max_iterations: int | None = None,
    is_leader: Callable[[], bool] = lambda: True,
) -> int:
    """Repeat plan+apply until stopped. A failing iteration is reported, backed off, and retried."""
    stop = stop or StopFlag()
    failures = 0
    iterations = 0
    while not stop.event.is_set():
        iterations += 1
        delay = interval
        if is_leader():
            try:
                it = run_once(cluster, manifests=load_manifests(), addons=addons, settings=settings,
                              controllers=controllers, namespace=namespace)
                failures = 0
                if it.changed:
                    report(it)
            except Exception as exc:
                failures += 1
                delay = min(60.0, interval * 2 ** min(failures, 6))
                log.exception("iteration failed")
                report_error(exc, delay)
        if max_iterations is not None and iterations >= max_iterations:
            break
        _sleep(delay, stop, controllers)
    if controllers:
        controllers.jobs.stop()
    return 0


def _sleep(delay: float, stop: StopFlag, controllers: LocalControllers | None) -> None:
    """Wait `delay` seconds, waking early when a local Job finishes or a stop is requested."""
    end = time.monotonic() + delay
    while time.monotonic() < end and not stop.event.is_set():
        if controllers and any(r.done.is_set() for r in controllers.jobs.runs.values()):
            return
        stop.event.wait(min(0.1, max(0.0, end - time.monotonic())))
