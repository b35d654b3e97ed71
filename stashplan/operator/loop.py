"""One reconcile iteration (read -> plan -> apply) and the loop that repeats it (`apply --watch`)."""

from __future__ import annotations

import gc
import logging
import os
import select
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import orjson

from stashplan.apply.writer import ApplyResult, apply_plan
from stashplan.cluster.base import Cluster
from stashplan.desired.compute import Settings
from stashplan.desired.stored import StoredObjects
from stashplan.kinds import identity
from stashplan.operator.incremental import INFORMED_KINDS, Incremental
from stashplan.operator.informer import Informer
from stashplan.operator.phase_log import PhaseLog
from stashplan.plan import build as plan_mod
from stashplan.plan.model import Plan

if TYPE_CHECKING:  # the loop's parts; a one-shot plan or apply starts without importing them
    from stashplan.cluster.local.controllers import CronScheduler, JobRunner
    from stashplan.operator.health import HealthServer
    from stashplan.operator.leader import LeaderElector

log = logging.getLogger("stashplan.operator.loop")


def read_actual(cluster: Cluster, namespace: str | None = None,
                manifests: Sequence[dict] = ()) -> dict[str, Sequence[dict]]:
    """Every object the planner needs: one list call per kind, whatever the number of objects.

    Namespaces (for their labels) are read only when a Repository shares itself by namespace selector. An object
    whose spec equals its manifest's holds the manifest's spec (one copy, not two). In local mode rows are parsed
    one by one, and compare-only kinds stay text until compared (StoredObjects)."""
    by_key = {identity(m): m for m in manifests}
    list_text = getattr(cluster, "list_text", None)
    actual: dict[str, Sequence[dict]] = {}
    for kind in plan_mod.READ_KINDS:
        if list_text is None:
            actual[kind] = [_compacted(o, by_key) for o in cluster.list(kind, namespace)]
        elif kind in plan_mod.COMPARED_KINDS:
            actual[kind] = StoredObjects(list_text(kind, namespace))
        else:
            actual[kind] = [_compacted(orjson.loads(text), by_key) for _, text in list_text(kind, namespace)]
    if any((((r.get("spec") or {}).get("usagePolicy") or {}).get("allowedNamespaces") or {}).get("from") == "Selector"
           for r in actual["Repository"]):
        actual["Namespace"] = cluster.list("Namespace")
    return actual


def _compacted(obj: dict, manifests: Mapping[tuple[str, str, str], dict]) -> dict:
    """`obj`, just read and ours to change, in less memory: holding its manifest's spec when the two are equal, and
    the short strings of its status (phase, condition types, reasons, times) interned."""
    if manifests and (m := manifests.get(identity(obj))) is not None and "spec" in m and obj.get("spec") == m["spec"]:
        obj["spec"] = m["spec"]
    status = obj.get("status")
    for flat in (status, *(status.get("conditions") or () if isinstance(status, dict) else ())):
        if type(flat) is dict:
            for key, value in flat.items():
                if type(value) is str and len(value) <= 64:
                    flat[key] = sys.intern(value)
    return obj


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
) -> Plan:
    actual = read_actual(cluster, namespace, manifests)
    inputs = plan_mod.Inputs(actual=actual, manifests=manifests, addons=addons, sources=sources, prune=prune)
    return plan_mod.build(inputs, now or datetime.now(UTC), settings)


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
    """The CronJob and Job controllers of local mode, ticked by the loop (any Cluster works)."""

    cron: CronScheduler
    jobs: JobRunner

    @classmethod
    def create(cls, cluster: Cluster, env: Mapping[str, str], log_dir: Path) -> LocalControllers:
        from stashplan.cluster.local.controllers import CronScheduler, JobRunner

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
    with gc_paused():
        events = controllers.tick(now) if controllers else []
        plan = make_plan(cluster, manifests=manifests, addons=addons, namespace=namespace, settings=settings,
                         now=now)
        result = apply_plan(cluster, plan, pushgateway_url=settings.pushgateway_url)
        if controllers:
            events += controllers.jobs.tick(now)  # start the Jobs this iteration created at once
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


WAKE_KINDS = ("BackupConfiguration", "BackupSession", "RestoreSession", "Repository", "Job")


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
    leader: LeaderElector | None = None,
    health: HealthServer | None = None,
    watch_wakeups: bool = False,
    resync: float = 300.0,
) -> int:
    """Repeat plan+apply until stopped. A failing iteration is reported, backed off, and retried.

    With `leader`, only the holder of the Lease plans and applies; the others wait and keep trying.
    With `watch_wakeups` (kube mode), reads come from an informer cache kept current by watches: the
    wait between iterations ends early on a change, an iteration plans only what changed, and a full
    relist and plan happen every `resync` seconds (`stashplan.operator.incremental`).
    """
    stop = stop or StopFlag()
    failures = 0
    iterations = 0
    wait = min(interval, leader.lease_seconds / 3) if leader else interval
    incremental: Incremental | None = None
    phases = PhaseLog()
    try:
        while not stop.is_set():
            iterations += 1
            delay = wait
            leading = leader.try_acquire_or_renew(datetime.now(UTC)) if leader else True
            if not leading and incremental is not None:
                incremental.informer.close()  # a leader again later starts from a fresh cache
                incremental = None
            if leading:
                try:
                    if watch_wakeups and incremental is None:
                        incremental = Incremental(Informer(cluster, INFORMED_KINDS).start(), resync=resync)
                    if incremental is not None:
                        with gc_paused():
                            plan, result = incremental.run_once(manifests=load_manifests(), addons=addons,
                                                                settings=settings, namespace=namespace)
                        it = Iteration(plan, result)
                    else:
                        it = run_once(cluster, manifests=load_manifests(), addons=addons, settings=settings,
                                      controllers=controllers, namespace=namespace)
                    source = incremental.informer if incremental is not None else cluster
                    for line in phases.observe([*source.list("BackupSession", namespace),
                                                *source.list("RestoreSession", namespace)]):
                        log.info("%s", line)
                    failures = 0
                    if health:
                        health.heartbeat(leader=True)
                        health.mark_iteration(True, Counter(c.action.value for c in it.result.applied))
                    if it.changed:
                        report(it)
                except Exception as exc:
                    failures += 1
                    delay = min(60.0, interval * 2 ** min(failures, 6))
                    log.exception("iteration failed")
                    if health:
                        health.mark_iteration(False, {})
                    report_error(exc, delay)
            elif health:
                health.heartbeat(leader=False)
            if max_iterations is not None and iterations >= max_iterations:
                break
            if incremental is not None and leading and not failures:
                incremental.informer.wait(delay, stop)
            else:
                _sleep(delay, stop, controllers)
    finally:
        if incremental is not None:
            incremental.informer.close()
        if stop.signum is not None:
            log.info("signal %s received; stopping", stop.signum)
        if controllers:
            for line in controllers.jobs.stop():
                log.info("%s", line)
        if leader:
            leader.release()
    return 0


class Waker:
    """Watches what the planner reads, in a background thread, from `start` on: `wait` returns early
    when anything changed since the previous wait, so a change made during an iteration is never left for
    the periodic resync (the informer pattern). A failing watch is logged and restarted; it only ever costs
    the early wake-up."""

    def __init__(self, cluster: Cluster, kinds: Sequence[str] = WAKE_KINDS, chunk: float = 10.0) -> None:
        self.cluster, self.kinds, self.chunk = cluster, tuple(kinds), chunk
        self.dirty = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        since: str | None = None
        while not self._closed.is_set():
            try:
                for event in self.cluster.watch(self.kinds, since, timeout=self.chunk):
                    since = (event.object.get("metadata") or {}).get("resourceVersion") or since
                    self.dirty.set()
                    if self._closed.is_set():
                        return
            except Exception as exc:
                log.warning("watch for wake-ups failed: %s; retrying", exc)
                since = None
                self._closed.wait(1.0)

    def start(self) -> Waker:
        self._thread = threading.Thread(target=self._run, name="stashplan-waker", daemon=True)
        self._thread.start()
        return self

    def wait(self, delay: float, stop: StopFlag) -> None:
        end = time.monotonic() + delay
        while not stop.is_set() and time.monotonic() < end:
            if self.dirty.wait(min(0.2, max(0.0, end - time.monotonic()))):
                break
        self.dirty.clear()

    def close(self) -> None:
        self._closed.set()


def _sleep(delay: float, stop: StopFlag, controllers: LocalControllers | None) -> None:
    """Wait `delay` seconds, waking early when a local Job finishes or a stop is requested."""
    end = time.monotonic() + delay
    while time.monotonic() < end and not stop.is_set():
        if controllers and any(r.done.is_set() for r in controllers.jobs.runs.values()):
            return
        stop.wait(min(0.1, max(0.0, end - time.monotonic())))
