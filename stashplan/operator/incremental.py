"""Reconciling what changed: loop iterations over an informer cache that plan only the BackupConfigurations
and RestoreSessions touched by changes since the previous iteration (plus those with a session in flight,
whose deadlines and retries move with time); a full plan on the first iteration, on every `resync`
seconds, with manifests (-f), and when a shared object changes (Repository, AppBinding, Task, Function, the
pods' identity, BackupBlueprints; Secrets are not watched and wait for the resync), and on every iteration
while any BackupBlueprint exists (auto-backup derives configurations from all AppBindings). An iteration's
cost follows the changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from stashplan.apply.actual import manifest_secrets
from stashplan.apply.writer import ApplyResult, apply_plan
from stashplan.desired.compute import Settings
from stashplan.desired.reads import (
    MEMBER_KINDS,
    READ_PER_NAMESPACE,
    READ_WHOLE,
    Key,
    Unit,
    job_key,
    unit_of,
    unit_reads,
)
from stashplan.desired.scope import Scope
from stashplan.objects import rfc3339
from stashplan.operator.informer import Informer
from stashplan.phases import FINAL, SETTLED
from stashplan.plan.build import READ_KINDS, Inputs, build, lists_namespaces, read_kinds, reads_secrets
from stashplan.plan.model import Plan

# What the informer caches: every kind the planner reads but Secrets (which the operator may not watch; in kube mode
# it reads none).
INFORMED_KINDS = tuple(k for k in READ_KINDS if k != "Secret")
# Objects several units read: a change to one plans everything (reads.py says who reads what).
SHARED_KINDS = frozenset({"Repository", "AppBinding", "BackupBlueprint", *READ_WHOLE, *READ_PER_NAMESPACE})


def _active(kind: str, obj: dict) -> bool:
    """A session whose desired state moves with time: in flight, or failed with a retry still to start."""
    status = obj.get("status") or {}
    phase = status.get("phase") or "Pending"
    if kind == "RestoreSession":
        return phase not in SETTLED
    retry_pending = phase == "Failed" and int(obj["spec"].get("retryLeft") or 0) > 0 and not status.get("retried")
    return phase not in FINAL or retry_pending


class Incremental:
    """The loop's state between iterations: the informer, which sessions belong to which configuration,
    and which units stay active."""

    def __init__(self, informer: Informer, *, resync: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.informer, self.resync, self.clock = informer, resync, clock
        self._last_full: float | None = None
        self._owner: dict[Key, Unit] = {}  # CronJob / Deployment / BackupSession / Job -> its unit (kept for deletions)
        self._members: dict[Unit, set[Key]] = {}  # unit -> its CronJob, receiver, sessions and Jobs
        self._active: set[Unit] = set()
        self.last_scope: int | None = None  # units planned by the last iteration (None: a full plan)

    def run_once(self, *, manifests: Sequence[dict] = (), addons: Sequence[dict] = (),
                 settings: Settings = Settings(), namespace: str | None = None,
                 now: datetime | None = None,
                 may_write: Callable[[], bool] | None = None) -> tuple[Plan, ApplyResult]:
        now = now or datetime.now(UTC)
        changed = self.informer.drain()
        resync_due = self._last_full is None or self.clock() - self._last_full >= self.resync
        if resync_due and self._last_full is not None:
            self.informer.relist()
            self.informer.drain()
        for key in changed:
            self._track(key, self.informer.lookup(*key))
        # Auto-backup (BackupBlueprints) derives configurations from every AppBinding: always planned whole.
        if manifests or resync_due or self._shared_change(changed) or self.informer.list("BackupBlueprint"):
            return self._full(manifests, addons, settings, namespace, now, may_write)
        units = {u for key in changed if (u := self._owner.get(key) or unit_of(key, None)) is not None}
        units |= self._active
        if namespace is not None:
            units = {u for u in units if u[1] == namespace}
        self.last_scope = len(units)
        if not units:
            return Plan((), created=rfc3339(now)), ApplyResult()
        actual = subset(units, self.informer, self._members, with_namespaces=settings.scope is not Scope.ALL)
        p = build(Inputs(actual=actual, addons=addons, secrets_read=reads_secrets(self.informer)), now, settings)
        result = apply_plan(self.informer, p, pushgateway_url=settings.pushgateway_url, may_write=may_write)
        self._refresh_active(units)
        return p, result

    # -- full iterations -------------------------------------------------------------------------
    def _full(self, manifests: Sequence[dict], addons: Sequence[dict], settings: Settings,
              namespace: str | None, now: datetime,
              may_write: Callable[[], bool] | None = None) -> tuple[Plan, ApplyResult]:
        self._last_full = self.clock()
        self.last_scope = None
        self._owner.clear()
        self._members.clear()
        for kind in (*MEMBER_KINDS, "BackupSession"):
            for obj in self.informer.list(kind):
                self._track((kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]), obj)
        actual = {kind: self.informer.list(kind, namespace) for kind in read_kinds(self.informer)}
        if "Secret" not in actual and (named := manifest_secrets(self.informer, manifests)):
            actual["Secret"] = named
        if lists_namespaces(actual["Repository"], manifests) or settings.scope is not Scope.ALL:
            actual["Namespace"] = self.informer.list("Namespace")
        p = build(Inputs(actual=actual, manifests=manifests, addons=addons,
                         secrets_read=reads_secrets(self.informer)), now, settings)
        result = apply_plan(self.informer, p, pushgateway_url=settings.pushgateway_url, may_write=may_write)
        units = {("BackupConfiguration", *k[1:]) for k in self._keys("BackupConfiguration")}
        units |= {("RestoreSession", *k[1:]) for k in self._keys("RestoreSession")}
        self._active.clear()
        self._refresh_active(units | set(self._members))
        return p, result

    def _keys(self, kind: str) -> list[Key]:
        return [(kind, o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in self.informer.list(kind)]

    def _shared_change(self, changed: set[Key]) -> bool:
        return any(key[0] in SHARED_KINDS for key in changed)

    # -- bookkeeping -----------------------------------------------------------------------------
    def _track(self, key: Key, obj: dict | None) -> None:
        if key[0] not in (*MEMBER_KINDS, "BackupSession"):
            return
        old = self._owner.pop(key, None)
        if old is not None:
            self._members.get(old, set()).discard(key)
        unit = unit_of(key, obj)
        if obj is not None and unit is not None:
            self._owner[key] = unit
            self._members.setdefault(unit, set()).add(key)
        elif old is not None:
            self._owner[key] = old  # deleted: its unit is still the one to re-plan (forgotten after that)

    def _refresh_active(self, units: set[Unit]) -> None:
        for unit in units:
            objs = [(k[0], self.informer.lookup(*k)) for k in self._members.get(unit, set())]
            if unit[0] == "RestoreSession":
                objs.append(("RestoreSession", self.informer.lookup(*unit)))
            if any(obj is not None and kind in ("BackupSession", "RestoreSession") and _active(kind, obj)
                   for kind, obj in objs):
                self._active.add(unit)
            else:
                self._active.discard(unit)
            for key in [k for k in self._members.get(unit, set()) if self.informer.lookup(*k) is None]:
                self._members[unit].discard(key)
                self._owner.pop(key, None)


class Source(Protocol):
    """Where a subset is read from (the informer; a plain index in tests)."""

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None: ...

    def in_namespace(self, kind: str, namespace: str) -> Sequence[dict]: ...

    def list(self, kind: str, namespace: str | None = None) -> Sequence[dict]: ...


def subset(units: set[Unit], source: Source, members: Mapping[Unit, set[Key]],
           with_namespaces: bool = False) -> dict[str, list[dict]]:
    """The objects a plan of `units` reads (stashplan.desired.reads): each unit and its members (CronJob,
    sessions, Jobs), what it reads by name, every Task and Function, and the identity objects of the namespaces
    it involves; with `with_namespaces` (opted-in scope) also the units' own Namespace objects, whose labels opt
    them in."""
    found: dict[Key, dict] = {}
    namespaces: set[str] = set()

    secrets = reads_secrets(source)

    def add(kind: str, ns: str, name: str) -> dict | None:
        if kind == "Secret" and not secrets:  # kube mode: the operator holds no Secret permission
            return None
        obj = source.lookup(kind, ns, name)
        if obj is not None:
            found[(kind, ns, name)] = obj
        return obj

    for unit in units:
        namespaces.add(unit[1])  # its sessions' pods run there even when the unit itself is gone
        for member in members.get(unit, set()):
            add(*member)
        obj = add(*unit)
        if obj is None:
            continue
        keys, involved = unit_reads(unit, obj, source.lookup)
        namespaces |= involved
        for key in keys:
            add(*key)
    for key in [k for k in found if k[0] == "BackupSession"]:
        add(*job_key("BackupSession", key[1], key[2]))
    if with_namespaces:
        for ns in {unit[1] for unit in units}:
            add("Namespace", "", ns)
    actual: dict[str, list[dict]] = {kind: [] for kind in READ_KINDS}
    for (kind, _, _), obj in found.items():
        actual.setdefault(kind, []).append(obj)
    for kind in READ_WHOLE:
        actual[kind] = list(source.list(kind))
    for kind in READ_PER_NAMESPACE:
        actual[kind] = [o for ns in sorted(namespaces) for o in source.in_namespace(kind, ns)]
    return actual
