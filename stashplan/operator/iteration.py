"""One iteration of the loop: the local controllers tick (local mode), then read -> plan -> apply."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stashplan.apply.actual import make_plan
from stashplan.apply.writer import ApplyResult, apply_plan
from stashplan.cluster.base import Cluster
from stashplan.desired.compute import Settings
from stashplan.plan.model import Plan

if TYPE_CHECKING:  # the local controllers are imported only by a loop that runs them
    from stashplan.cluster.local.controllers import CronScheduler, JobRunner
    from stashplan.cluster.local.deployments import DeploymentSupervisor


@dataclass
class Iteration:
    plan: Plan
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
    """The CronJob, Job and Deployment controllers of local mode, ticked by the loop (any Cluster works)."""

    cron: CronScheduler
    jobs: JobRunner
    deployments: DeploymentSupervisor

    @classmethod
    def create(cls, cluster: Cluster, env: Mapping[str, str], log_dir: Path) -> LocalControllers:
        from stashplan.cluster.local.controllers import CronScheduler, JobRunner
        from stashplan.cluster.local.deployments import DeploymentSupervisor

        return cls(CronScheduler(cluster), JobRunner(cluster, env, log_dir),
                   DeploymentSupervisor(cluster, env, log_dir))

    def tick(self, now: datetime) -> list[str]:
        return self.jobs.tick(now) + self.cron.tick(now) + self.deployments.tick(now)

    def stop(self) -> list[str]:
        """End every running Job (marked Failed) and supervised process (the loop is stopping)."""
        return self.jobs.stop() + self.deployments.stop()


def run_once(
    cluster: Cluster,
    *,
    manifests: Sequence[dict] = (),
    addons: Sequence[dict] = (),
    settings: Settings = Settings(),
    controllers: LocalControllers | None = None,
    namespace: str | None = None,
    now: datetime | None = None,
    may_write: Callable[[], bool] | None = None,
) -> Iteration:
    now = now or datetime.now(UTC)
    with gc_paused():
        events = controllers.tick(now) if controllers else []
        plan = make_plan(cluster, manifests=manifests, addons=addons, namespace=namespace, settings=settings,
                         now=now)
        result = apply_plan(cluster, plan, pushgateway_url=settings.pushgateway_url, may_write=may_write)
        if controllers:
            # start the Jobs (and processes of Deployments) this iteration created at once
            events += controllers.jobs.tick(now) + controllers.deployments.tick(now)
    return Iteration(plan, result, events)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (planning allocates many long-lived trees, which the collector
    would scan over and over); the previous state is restored after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
