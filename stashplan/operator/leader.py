"""Leader election on a coordination.k8s.io/v1 Lease through any Cluster: one active loop per cluster.

Pure logic over get/create/replace with optimistic concurrency: every write carries the resourceVersion
it read, so two candidates racing for an expired lease cannot both win (the loser gets Conflict).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from stashplan.cluster.base import Cluster
from stashplan.errors import AlreadyExists, Conflict, NotFound, TransientError

log = logging.getLogger("stashplan.operator.leader")


def _micro(now: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Holds or waits for the Lease `namespace/name`. `start_renewing` renews it on its own timer (every third of
    the lease); `still_leading` says whether writes are still safe: only while the last renewal is within two thirds
    of the lease duration, so a loop that stalls stops writing before a standby may take over."""

    def __init__(
        self, cluster: Cluster, name: str, namespace: str, identity: str, lease_seconds: int = 15
    ) -> None:
        if not identity:
            raise ValueError("leader election needs a non-empty identity (the pod name)")
        self.cluster = cluster
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_seconds = int(lease_seconds)
        self._renewed: datetime | None = None  # when we last wrote the lease as its holder
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._renewed is not None

    def still_leading(self, now: datetime | None = None) -> bool:
        """True while this candidate's last renewal is safely inside the lease duration."""
        renewed = self._renewed
        now = now or datetime.now(UTC)
        return renewed is not None and now - renewed < timedelta(seconds=self.lease_seconds) * 2 / 3

    def start_renewing(self) -> None:
        """Try to acquire the lease now, then acquire or renew it every third of its duration in a thread."""
        self._attempt_logged()
        self._thread = threading.Thread(target=self._renew_loop, name="stashplan-lease", daemon=True)
        self._thread.start()

    def stop_renewing(self) -> None:
        """End the renewal thread (the lease then expires unless released)."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.lease_seconds)

    def _renew_loop(self) -> None:
        while not self._stopped.wait(self.lease_seconds / 3):
            self._attempt_logged()

    def _attempt_logged(self) -> None:
        try:
            self.try_acquire_or_renew(datetime.now(UTC))
        except Exception as exc:  # the lease API failing in an unexpected way: not leading until it works
            log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            self._renewed = None

    def try_acquire_or_renew(self, now: datetime) -> bool:
        """True when this candidate holds the lease until now + lease_seconds; never raises Conflict."""
        with self._lock:
            return self._try_acquire_or_renew(now)

    def _try_acquire_or_renew(self, now: datetime) -> bool:
        try:
            held = self._attempt(now)
        except (Conflict, AlreadyExists):
            held = False  # another candidate wrote first; look again next iteration
        except TransientError as exc:
            # Keep leading only while our last renewal is safely inside the lease duration.
            held = (
                self._renewed is not None
                and now - self._renewed < timedelta(seconds=self.lease_seconds) * 2 / 3
            )
            log.warning(
                "lease %s/%s: %s; %s",
                self.namespace,
                self.name,
                exc,
                "still leading" if held else "stepping down",
            )
            if held:
                return True
        if held:
            if self._renewed is None:
                log.info("lease %s/%s acquired by %s", self.namespace, self.name, self.identity)
            self._renewed = now
        elif self._renewed is not None:
            log.info("lease %s/%s lost by %s", self.namespace, self.name, self.identity)
            self._renewed = None
        return held

    def release(self) -> None:
        """Stop renewing and give the lease up at once (on shutdown) so that a standby takes over without waiting."""
        self.stop_renewing()
        if self._renewed is None:
            return
        self._renewed = None
        try:
            lease = self.cluster.get("Lease", self.namespace, self.name)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec = dict(spec, holderIdentity="", leaseDurationSeconds=1)
            self.cluster.replace(dict(lease, spec=spec))
        except (NotFound, Conflict, TransientError) as exc:
            log.warning("lease %s/%s not released: %s", self.namespace, self.name, exc)

    def _attempt(self, now: datetime) -> bool:
        stamp = _micro(now)
        try:
            lease = self.cluster.get("Lease", self.namespace, self.name)
        except NotFound:
            self.cluster.create(
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {
                        "holderIdentity": self.identity,
                        "leaseDurationSeconds": self.lease_seconds,
                        "acquireTime": stamp,
                        "renewTime": stamp,
                        "leaseTransitions": 0,
                    },
                }
            )
            return True
        spec = dict(lease.get("spec") or {})
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec, now):
            return False
        if holder != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = stamp
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=self.lease_seconds, renewTime=stamp)
        self.cluster.replace(dict(lease, spec=spec))  # carries the resourceVersion we read
        return True

    @staticmethod
    def _expired(spec: dict, now: datetime) -> bool:
        try:
            renewed = datetime.fromisoformat(str(spec.get("renewTime")))
        except ValueError:
            return True
        duration = int(spec.get("leaseDurationSeconds") or 0)
        return now >= renewed + timedelta(seconds=duration)
