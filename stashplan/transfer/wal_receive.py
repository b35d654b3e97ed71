"""`stashplan transfer wal-receive`: what a BackupConfiguration's WAL receiver Deployment runs (Task param
walArchive=receive). It reads the configuration, its AppBinding and Secrets and its Repository as a backup Job
does, then streams WAL over the replication slot into the Repository (stashplan.pitr.receive) until SIGTERM, and
refreshes the Repository's point-in-time status every STATUS_EVERY partial pushes (at least 10 s apart), and
pushes the window's metrics as the base backup does, so that they and their alerts do not wait for the next one."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from providers.databases.postgres import PostgresProvider
from providers.storage import storage_from_repository
from stashplan import metrics
from stashplan.cluster.base import Cluster
from stashplan.errors import NotFound, TransferError
from stashplan.objects import set_condition
from stashplan.pitr import continuity
from stashplan.pitr.inventory import take_inventory
from stashplan.pitr.receive import Options, Receiver, Source, check_slot, drop_slot
from stashplan.repository import Repository
from stashplan.repository.opening import open_repository
from stashplan.transfer.context import PodInputs, SessionContext, load_configuration
from stashplan.transfer.post import describe, metrics_invoker, repository_state

log = logging.getLogger(__name__)
STATUS_EVERY = 12  # partial pushes between refreshes of the Repository's status.pitr (a minute by default)


@dataclass(frozen=True)
class ReceiveOptions:
    """The receiver's flags: its slot, how often the partial segment is pushed, where pg_receivewal writes
    (empty: a folder of the temporary directory named for the configuration), the clients, the Pushgateway."""

    slot: str
    interval: float = 5.0
    directory: str = ""
    pg_receivewal: str = "pg_receivewal"
    psql: str = "psql"
    pushgateway_url: str = ""
    deployment: str = ""  # the Deployment running it: once that is gone (or moved to another slot), drop the slot


def work_directory(namespace: str, name: str, given: str = "") -> Path:
    """Where pg_receivewal writes: `given`, else `<tmp>/stashplan-wal-receive/<namespace>_<name>` (kept between
    runs on one machine; losing it is harmless: pg_receivewal restarts from the slot's position)."""
    return Path(given) if given else Path(tempfile.gettempdir()) / "stashplan-wal-receive" / f"{namespace}_{name}"


def receive(cluster: Cluster, namespace: str, name: str, opts: ReceiveOptions, given: PodInputs | None) -> None:
    """Stream the configuration's server's WAL into its Repository until SIGTERM (returns) or until pg_receivewal
    ends on its own (StashplanError). ContextError when its inputs cannot be read; ValueError for a bad slot."""
    check_slot(opts.slot)
    ctx = load_configuration(cluster, namespace, name, given)
    provider = PostgresProvider()
    with tempfile.TemporaryDirectory(prefix="stashplan-wal-receive-") as tmp:
        conn = provider.connection(ctx.appbinding, ctx.db_secret, Path(tmp), tls=ctx.client_tls)
        os.environ.update(provider.client_env(conn))  # pg_receivewal and psql read the password from it
        repo = open_repository(storage_from_repository(ctx.repository, ctx.storage_secret), ctx.password)
        try:
            if not isinstance(repo, Repository):
                raise TransferError("WAL is archived into a stashplan repository, not restic's")
            source = Source(conn.host, conn.port or 5432, conn.username, conn.database or "postgres")
            options = Options(opts.slot, work_directory(namespace, name, opts.directory), opts.interval,
                              opts.pg_receivewal, opts.psql, opts.pushgateway_url,
                              clear_foreign=not opts.directory)  # its own default directory: emptied if foreign
            stop = threading.Event()
            receiver = Receiver(repo, source, options)
            refresher = threading.Thread(
                target=_refresh_status,
                args=(cluster, ctx, repo, stop, max(10.0, opts.interval * STATUS_EVERY), opts.pushgateway_url,
                      receiver),
                name="stashplan-pitr-status",
                daemon=True,
            )
            refresher.start()
            try:
                receiver.run()
            finally:
                stop.set()
                refresher.join(timeout=30)
            if opts.deployment:
                _drop_slot_if_retired(cluster, ctx, opts.deployment, source, options)
        finally:
            repo.close()


def retired(cluster: Cluster, namespace: str, deployment: str, slot: str) -> str | None:
    """Why nothing will stream through `slot` again once this receiver has stopped: its Deployment is gone (its
    BackupConfiguration deleted, or walArchive removed), being deleted, or now runs another slot (walSlot
    changed). None while the Deployment still runs this slot (a restart, a pause, a node drained) or when it
    cannot be read (the slot is kept: dropping it wrongly loses the WAL a restarted receiver would resume from)."""
    try:
        found = cluster.get("Deployment", namespace, deployment)
    except NotFound:
        return f"its Deployment {namespace}/{deployment} is gone"
    except Exception as exc:
        log.warning("could not read Deployment %s/%s to tell whether slot %s is still used (%s); it is kept",
                    namespace, deployment, slot, describe(exc))  # fmt: skip
        return None
    if (found.get("metadata") or {}).get("deletionTimestamp"):
        return f"its Deployment {namespace}/{deployment} is being deleted"
    pod = ((found.get("spec") or {}).get("template") or {}).get("spec") or {}
    args = [str(a) for c in pod.get("containers") or [] for a in c.get("args") or []]
    slots = {a.split("=", 1)[1] for a in args if a.startswith("--slot=")}
    if slots and slot not in slots:
        return f"its Deployment {namespace}/{deployment} now streams through slot {', '.join(sorted(slots))}"
    return None


def _drop_slot_if_retired(cluster: Cluster, ctx: SessionContext, deployment: str, source: Source,
                          options: Options) -> None:
    """After a stop: drop the replication slot nothing will use again, so that the server stops keeping WAL for
    it (a forgotten slot fills the database's disk). A failure is one warning line saying what to run."""
    why = retired(cluster, ctx.namespace, deployment, options.slot)
    if why is None:
        log.info("slot %s kept for the receiver's next start", options.slot)
        return
    try:
        drop_slot(source, options)
    except Exception as exc:
        log.warning("%s, but replication slot %s could not be dropped (%s): the server keeps WAL for it until "
                    "it is (SELECT pg_drop_replication_slot('%s'))", why, options.slot, describe(exc), options.slot)
        return
    log.info("%s: dropped replication slot %s (the server no longer keeps WAL for it)", why, options.slot)


def refresh_status(
    cluster: Cluster, ctx: SessionContext, repo: Repository, now: datetime, pushgateway_url: str = "",
    caught_up: float | None = None, every: float | None = None,
) -> None:
    """Write what a point-in-time restore can reach now into the Repository's `status.pitr` and its
    WALContinuous condition, and push its gauges to `pushgateway_url` (if any), as the check after a base backup
    does: between base backups the window grows with every segment received, and a gap shows without waiting
    for the next one. `caught_up`: when the receiver last had all the server's WAL in the repository; `every`:
    the receiver's seconds between refreshes (pushed with `now` as its heartbeat)."""
    found = continuity.of_inventory(take_inventory(repo), now)
    if pushgateway_url:
        push_window(pushgateway_url, ctx, found, caught_up, (now.timestamp(), every) if every else None)
    name = ctx.repository["metadata"]["name"]
    current = cluster.get("Repository", ctx.repo_namespace, name)
    old = (current or {}).get("status") or {}
    ok, reason, message = continuity.condition(found)
    conditions = set_condition(old.get("conditions"), continuity.CONDITION, ok, reason, message, now)
    cluster.patch_status(
        "Repository", ctx.repo_namespace, name, {"pitr": continuity.status(found), "conditions": conditions}
    )


def push_window(url: str, ctx: SessionContext, found: continuity.Continuity, caught_up: float | None = None,
                heartbeat: tuple[float, float] | None = None) -> None:
    """POST the continuity gauges into the job group and under the labels of the base backup's repository metrics
    (replacing its window, keeping its other metrics), with a receiver's `heartbeat` (when it checked, seconds
    between checks) under its configuration's labels; a failure is logged, never raised."""
    invoker = metrics_invoker(ctx)
    labels = metrics.repository_labels(invoker, repository_state(ctx))
    registry = continuity.registry(labels, found, caught_up=caught_up)
    if heartbeat is not None:
        config = {"namespace": invoker.namespace, "invoker_kind": invoker.kind, "invoker_name": invoker.name}
        continuity.receiver_heartbeat(config, *heartbeat, registry)
    try:
        metrics.push(url, metrics.job_name(invoker.kind, ctx.namespace, invoker.name), registry)
    except metrics.MetricsPushError as exc:  # its message names the URL without credentials
        log.warning("could not push the point-in-time window metrics: %s", exc)


def _refresh_status(
    cluster: Cluster, ctx: SessionContext, repo: Repository, stop: threading.Event, every: float, url: str,
    receiver: Receiver,
) -> None:
    while not stop.wait(every):
        try:
            refresh_status(cluster, ctx, repo, datetime.now(UTC), url, receiver.caught_up, every)
        except Exception as exc:  # the receiver goes on; the next refresh tries again
            log.warning("could not refresh the Repository's point-in-time status: %s", describe(exc))
