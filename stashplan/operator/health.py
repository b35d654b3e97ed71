"""The operator's HTTP endpoint: /healthz (liveness), /readyz (readiness) and Prometheus /metrics.

The loop reports each iteration with `mark_iteration` and what its objects say with `observe`; standby
replicas call `heartbeat` so that they stay live and ready while another replica holds the lease. Own
registry: no global state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stashplan.operator.loop_metrics import Observed

# Seconds: an iteration of a small installation takes milliseconds, a large one's full relist and plan minutes.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CONFIG_LABELS = ["namespace", "invoker_kind", "invoker_name"]


class ObservedCollector(Collector):
    """The gauges of the objects the last iteration read, replaced as a whole by `update` (so that a deleted
    configuration or a finished session leaves /metrics at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observed = Observed()

    def update(self, observed: Observed) -> None:
        with self._lock:
            self._observed = observed

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            o = self._observed
        interval = GaugeMetricFamily(
            "stashplan_backupconfiguration_schedule_interval_seconds",
            "Longest gap between two runs of the BackupConfiguration's schedule (paused ones too).", labels=CONFIG_LABELS)
        paused = GaugeMetricFamily("stashplan_backupconfiguration_paused",
                                   "1 when the BackupConfiguration is paused (spec.paused).", labels=CONFIG_LABELS)
        created = GaugeMetricFamily("stashplan_backupconfiguration_created_timestamp_seconds",
                                    "Unix time the BackupConfiguration was created.", labels=CONFIG_LABELS)
        receiver = GaugeMetricFamily(
            "stashplan_backupconfiguration_wal_receiver",
            "1 when the BackupConfiguration's WAL receiver should be running and pushing (walArchive receive, not "
            "paused, a Pushgateway URL given).",
            labels=CONFIG_LABELS)
        for namespace, name in o.receivers:
            receiver.add_metric([namespace, "BackupConfiguration", name], 1.0)
        for c in o.configs:
            labels = [c.namespace, "BackupConfiguration", c.name]
            paused.add_metric(labels, 1.0 if c.paused else 0.0)
            if c.interval is not None:
                interval.add_metric(labels, c.interval)
            if c.created is not None:
                created.add_metric(labels, c.created)
        deadline = GaugeMetricFamily("stashplan_session_deadline_timestamp_seconds",
                                     "Deadline (start + timeOut) of each Running session that has a timeOut.",
                                     labels=[*CONFIG_LABELS, "session"])
        for d in o.deadlines:
            deadline.add_metric([d.namespace, d.invoker_kind, d.invoker_name, d.session], d.deadline)
        objects = GaugeMetricFamily("stashplan_objects", "Objects the operator sees, by kind and phase.",
                                    labels=["kind", "phase"])
        for (kind, phase), count in sorted(o.objects.items()):
            objects.add_metric([kind, phase], count)
        yield from (interval, paused, created, receiver, deadline, objects)


class LoopMetrics:
    """The loop's operator metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.iterations = Counter(
            "stashplan_loop_iterations",
            "Reconcile loop iterations by result.",
            ["result"],
            registry=self.registry,
        )
        self.actions = Counter(
            "stashplan_plan_actions",
            "Plan actions applied, by action type.",
            ["action"],
            registry=self.registry,
        )
        self.apply_errors = Counter(
            "stashplan_apply_errors", "Iterations whose plan or apply failed, by reason (the error's type).",
            ["reason"], registry=self.registry
        )
        self.duration = Histogram(
            "stashplan_loop_iteration_duration_seconds", "Duration of each loop iteration (plan and apply).",
            buckets=DURATION_BUCKETS, registry=self.registry,
        )
        self.observed = ObservedCollector()
        self.registry.register(self.observed)
        self.last_success = Gauge(
            "stashplan_last_successful_iteration_timestamp_seconds",
            "Unix time of the last iteration that completed without error.",
            registry=self.registry,
        )
        self.leader = Gauge(
            "stashplan_leader", "1 while this replica holds the lease.", registry=self.registry
        )


class HealthServer:
    """Serves /healthz, /readyz and /metrics on `port` (0 picks a free one; see `.port`) in a thread."""

    def __init__(self, port: int, host: str = "0.0.0.0", stale_after: float = 300.0) -> None:
        self.metrics = LoopMetrics()
        self._host = host
        self._port = port
        self._stale_after = stale_after
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        self._ready = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, ctype, body = owner.respond(self.path.split("?", 1)[0])
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # probes are not worth a log line
                pass

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def mark_iteration(self, ok: bool, actions: Mapping[str, int], duration: float | None = None,
                       reason: str = "Unknown") -> None:
        """Record one loop iteration: its result, the plan actions it applied by type, how long it took, and
        for a failed one why (`reason`, e.g. the error's type)."""
        m = self.metrics
        m.iterations.labels(result="ok" if ok else "error").inc()
        if duration is not None:
            m.duration.observe(duration)
        for action, count in actions.items():
            if count:
                m.actions.labels(action=action).inc(count)
        if ok:
            m.last_success.set(time.time())
        else:
            m.apply_errors.labels(reason=reason).inc()
        with self._lock:
            self._last_beat = time.monotonic()
            self._ready = self._ready or ok

    def observe(self, observed: Observed) -> None:
        """The gauges of the objects the last iteration read (loop_metrics.observe), replacing the previous."""
        self.metrics.observed.update(observed)

    def heartbeat(self, leader: bool = False) -> None:
        """The loop is alive (e.g. a standby waiting for the lease); a standby counts as ready. A standby exports
        nothing about the objects: the leader does, and a former leader's values would only go stale (a session
        it saw Running would pass its deadline for ever)."""
        self.metrics.leader.set(1 if leader else 0)
        if not leader:
            self.metrics.observed.update(Observed())
        with self._lock:
            self._last_beat = time.monotonic()
            self._ready = self._ready or not leader

    def respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        with self._lock:
            beat, ready = self._last_beat, self._ready
        if path == "/healthz":
            stale = beat is not None and time.monotonic() - beat > self._stale_after
            return (503, "text/plain", b"loop stalled\n") if stale else (200, "text/plain", b"ok\n")
        if path == "/readyz":
            return (200, "text/plain", b"ready\n") if ready else (503, "text/plain", b"not ready\n")
        return 404, "text/plain", b"not found\n"
