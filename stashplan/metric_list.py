"""Every metric stashplan exports, from the code's own registries: what a backup, its repository and a restore
push (stashplan/metrics.py) with the WAL continuity a base backup and a WAL receiver push
(stashplan/pitr/continuity.py), the operator's /metrics (stashplan/operator/health.py) and what
`stashplan pg wal-receive` pushes (stashplan/pitr/slotlag.py). Prints the README's Markdown table:
`python -m stashplan.metric_list`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from stashplan import metrics
from stashplan.desired.pods import COMPONENT, RECEIVER_ROLE
from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE, MANAGED_LABEL, MANAGED_VALUE
from stashplan.operator.health import HealthServer
from stashplan.operator.loop_metrics import observe
from stashplan.pitr import continuity
from stashplan.pitr.slotlag import SlotLag, lag_registry

BEGIN, END = "<!-- metric-list:begin (python -m stashplan.metric_list) -->", "<!-- metric-list:end -->"


def registries() -> Iterator[tuple[str, CollectorRegistry]]:
    """(who exports it, registry) with one sample of every series, built from placeholder values."""
    inv = metrics.Invoker("BackupConfiguration", "cfg", "demo", "repo")
    tgt = metrics.Target("postgres", "kubedb.com", "db")
    yield "backup (push)", metrics.backup_session_registry(
        inv, tgt, metrics.HostResult("host-0", True, 1.0, 10, 5, 1.0), session_duration=1.0, now=1.0)
    yield "failed backup (push)", metrics.backup_session_registry(
        inv, tgt, metrics.HostResult("host-0", False), session_duration=1.0, now=1.0,
        failure_reason=metrics.FailureReason.DUMP_FAILED)
    repo = metrics.RepositoryState("repo", "demo", "s3", True, 1, 1, 0, bucket="b", prefix="p")
    yield "backup (push)", metrics.repository_registry(inv, repo)
    now = datetime.now(UTC)
    window = continuity.registry(metrics.repository_labels(inv, repo), continuity.Continuity(now, now, now, 1, 0, (), ()),
                                 caught_up=now.timestamp())
    yield "base backup, transfer wal-receive (push)", window
    receiver = CollectorRegistry()
    continuity.receiver_heartbeat({"namespace": "demo", "invoker_kind": "BackupConfiguration", "invoker_name": "cfg"},
                                  now.timestamp(), 60.0, receiver)
    yield "transfer wal-receive (push)", receiver
    yield "restore (push)", metrics.restore_session_registry(
        metrics.Invoker("RestoreSession", "r", "demo", "repo"), tgt, metrics.HostResult("host-0", True, 1.0),
        session_duration=1.0)
    health = HealthServer(0)
    health.mark_iteration(True, {"create": 1}, 0.1)
    health.mark_iteration(False, {}, 0.1, "Conflict")
    health.heartbeat(leader=True)
    config = {"kind": "BackupConfiguration", "metadata": {"name": "cfg", "namespace": "demo",
                                                          "creationTimestamp": "2024-01-01T00:00:00Z"},
              "spec": {"schedule": "0 2 * * *"}}
    session = {"kind": "BackupSession", "metadata": {"name": "s", "namespace": "demo"},
               "spec": {"invoker": {"name": "cfg"}},
               "status": {"phase": "Running", "sessionDeadline": "2024-01-01T03:00:00Z"}}
    deployment = {"kind": "Deployment", "metadata": {"name": "cfg-wal-receive", "namespace": "demo", "labels": {
        MANAGED_LABEL: MANAGED_VALUE, COMPONENT: RECEIVER_ROLE, INVOKER_TYPE: "BackupConfiguration", INVOKER_NAME: "cfg"}},
        "spec": {"replicas": 1}}
    health.observe(observe([config], [session], [deployment]))
    yield "operator /metrics", health.metrics.registry
    yield "pg wal-receive (push)", lag_registry("db-0", 5432, "stashplan", SlotLag(2048, 1024), 1.0)


def rows() -> list[tuple[str, str, str, str, str, str]]:
    """(name, Stash's legacy name, type, labels, exported by, help) of every metric, sorted by name. A pushed
    Stash metric is registered under its new name, then its legacy one (stashplan.metrics._Metrics.set)."""
    found: dict[str, tuple[str, str, str, str, str, str]] = {}
    for source, registry in registries():
        families = list(registry.collect())
        for i, family in enumerate(families):
            if not family.name.startswith(metrics.NEW) and family.name.startswith("stash_"):
                continue  # a legacy twin, listed with its new name
            twin = families[i + 1].name if family.name.startswith(metrics.NEW) and i + 1 < len(families) else ""
            labels = {label for sample in family.samples for label in sample.labels} - {"le"}
            name = family.name + ("_total" if family.type == "counter" else "")
            found.setdefault(name, (name, f"`{twin}`" if twin else "", family.type, ", ".join(sorted(labels)),
                                    source, family.documentation))
    return [found[n] for n in sorted(found)]


def markdown() -> str:
    """The README table, between its markers."""
    lines = [BEGIN, "| metric | Stash's legacy name | type | labels | exported by | meaning |",
             "|---|---|---|---|---|---|"]
    lines += [f"| `{n}` | {legacy} | {t} | {lb} | {src} | {doc} |" for n, legacy, t, lb, src, doc in rows()]
    return "\n".join([*lines, END]) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
