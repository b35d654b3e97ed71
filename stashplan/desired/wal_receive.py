"""A BackupConfiguration's WAL receiver: with Task `postgres-basebackup-<v>` and Task param `walArchive: receive`,
one Deployment `<config>-wal-receive` runs `stashplan transfer wal-receive` (pg_receivewal over a replication
slot into the configuration's Repository) with the image, identity and Secrets its backup Jobs get. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from stashplan.desired import tasks
from stashplan.desired.pod_secrets import give_secrets, session_secrets
from stashplan.desired.pods import (
    COMPONENT,
    JOB_IDENTITY,
    RECEIVER_ROLE,
    managed_labels,
    mount_local_backend,
    pod_metadata,
    receiver_name,
    session_pod,
)
from stashplan.desired.sessions import new_backup_session
from stashplan.desired.world import Settings, World, repository_of, target_of
from stashplan.errors import StashplanError
from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE
from stashplan.objects import owner_ref

WAL_PARAMS = ("walArchive", "walSlot", "walPartialInterval")
BASEBACKUP_TASK = "postgres-basebackup-"
RECEIVE = "receive"
ROLE = RECEIVER_ROLE
DEFAULT_INTERVAL = 5.0
RECEIVER_COMMAND = "pg_receivewal"  # what the receiver runs besides stashplan (local mode checks it is here)
_SLOT = re.compile(r"[a-z0-9_]{1,63}")


@dataclass(frozen=True)
class WalReceive:
    """What the receiver of one configuration streams through: its replication slot and how often (seconds) the
    partial segment is pushed."""

    slot: str
    interval: float = DEFAULT_INTERVAL


def default_slot(config_name: str) -> str:
    """`stashplan_<config name>` with every character but a-z, 0-9 and _ made `_`, at most 63 characters."""
    return re.sub(r"[^a-z0-9_]", "_", f"stashplan_{config_name.lower()}")[:63]


def wal_receive_of(config_name: str, task_name: str, params: Mapping[str, str]) -> WalReceive | None:
    """The receiver a configuration's Task params ask for (None: walArchive absent, the user archives with
    archive_command). StashplanError naming `spec.task.params` for a bad value, for receiver params without
    walArchive=receive, or for them with another Task than postgres-basebackup-<version>."""
    given = [p for p in WAL_PARAMS if params.get(p, "") != ""]
    if not given:
        return None
    if not task_name.startswith(BASEBACKUP_TASK):
        raise StashplanError(f"spec.task.params: {', '.join(given)}: WAL archiving is for Task "
                             f"{BASEBACKUP_TASK}<version> (base backups), not {task_name}")
    mode = params.get("walArchive", "")
    if mode != RECEIVE:
        what = f"walArchive {mode!r}" if mode else f"{', '.join(given)} without walArchive"
        raise StashplanError(f"spec.task.params: {what}: the only value of walArchive is {RECEIVE!r} (a Deployment "
                             "streams WAL over a replication slot); leave it out when archive_command archives")
    slot = params.get("walSlot") or default_slot(config_name)
    if not _SLOT.fullmatch(slot):
        raise StashplanError(f"spec.task.params: walSlot {slot!r}: a replication slot name is 1-63 of a-z, 0-9 "
                             "and _")
    raw = params.get("walPartialInterval") or f"{DEFAULT_INTERVAL:g}"
    try:
        interval = float(raw)
    except ValueError:
        interval = math.nan
    if not (0 < interval <= 3600):
        raise StashplanError(f"spec.task.params: walPartialInterval {raw!r}: seconds between pushes of the "
                             "partial segment, more than 0 and at most 3600")
    return WalReceive(slot, interval)


def wal_receive_deployment(world: World, config: dict, settings: Settings, task: tasks.ResolvedTask,
                           wal: WalReceive) -> dict | None:
    """The receiver Deployment of `config` (replicas 0 while paused, Recreate: never two on one slot); None while
    its Repository or target does not exist (it would have nowhere to stream from or to)."""
    meta, spec = config["metadata"], config["spec"]
    ns, name = meta["namespace"], meta["name"]
    repo, _ = repository_of(world, config)
    target, _ = target_of(world, config)
    if repo is None or target is None:
        return None
    placeholder = new_backup_session(config, 0)  # the pod a backup Job of this configuration gets
    placeholder["metadata"]["namespace"] = ns
    inputs = tasks.backup_inputs(config, repo, target, placeholder, pushgateway_url=settings.pushgateway_url)
    inputs["STASHPLAN_IMAGE"] = settings.image
    pod = tasks.build_pod_spec(world.tasks[task.name], world.functions, inputs, task.params)
    pod.pop("initContainers", None)
    container = pod["containers"][-1]
    container.update(name=ROLE, command=["stashplan"], args=receiver_args(ns, name, wal, settings.pushgateway_url))
    pod["restartPolicy"] = "Always"
    mount_local_backend(pod, repo)
    session_pod(pod, spec)
    give_secrets(pod, session_secrets(target, repo), repo, ns)
    pod = {"serviceAccountName": JOB_IDENTITY, **pod}
    invoker = {INVOKER_TYPE: "BackupConfiguration", INVOKER_NAME: name}
    selector = {**invoker, COMPONENT: ROLE}
    template_meta = pod_metadata(spec.get("runtimeSettings"))
    template_meta["labels"] = {**template_meta.get("labels", {}), **selector}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": receiver_name(name), "namespace": ns, "labels": managed_labels(ROLE, invoker),
                     "ownerReferences": [owner_ref(config)]},
        "spec": {
            "replicas": 0 if spec.get("paused") else 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {"metadata": template_meta, "spec": pod},
        },
    }


def receiver_args(namespace: str, config_name: str, wal: WalReceive, pushgateway_url: str) -> list[str]:
    """The receiver's command line; `--deployment` names its own Deployment, whose end drops the slot."""
    args = ["transfer", "wal-receive", f"--namespace={namespace}", f"--backupconfiguration={config_name}",
            f"--slot={wal.slot}", f"--partial-interval={wal.interval:g}", f"--deployment={receiver_name(config_name)}"]
    return [*args, f"--pushgateway-url={pushgateway_url}"] if pushgateway_url else args
