"""Desired state: a pure function of the Stash resources, the objects that exist, and `now`.

Each BackupConfiguration gets a trigger CronJob and a status; each pending BackupSession or
RestoreSession gets a Job built from its Task (`stashplan.desired.session_phases`); session phases follow
their Jobs and deadlines; completed sessions beyond `backupHistoryLimit` are deleted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

from stashplan.desired import tasks
from stashplan.desired.bindings import custom_identity_bindings
from stashplan.desired.boundaries import foreign_target
from stashplan.desired.hook_notes import local_exec_hook_notes
from stashplan.desired.pods import JOB_IDENTITY, apply_runtime, cronjob_name, job_identity, managed_labels
from stashplan.desired.refused import refused_field
from stashplan.desired.session_phases import backup_sessions, check_backup_params, restore_session
from stashplan.desired.wal_receive import RECEIVER_COMMAND, WalReceive, wal_receive_deployment, wal_receive_of
from stashplan.desired.world import (
    Deletion,
    Desired,
    Settings,
    StatusChange,
    WantedObjects,
    WantedStatuses,
    World,
    repository_denied_for,
    repository_of,
    storage_secret_of,
    target_of,
)
from stashplan.errors import StashplanError
from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE
from stashplan.objects import owner_ref, set_condition

__all__ = ["Deletion", "Desired", "Settings", "StatusChange", "World", "compute", "trigger_cronjob"]

def compute(world: World, now: datetime, settings: Settings = Settings(),
            settled: Callable[[dict], bool] | None = None,
            status_settled: Callable[[StatusChange], bool] | None = None) -> Desired:
    """What should exist; objects `settled` accepts (already there as wanted) are only counted in `identities`,
    status changes `status_settled` accepts are left out."""
    wanted = WantedObjects(settled)
    out = Desired(objects=wanted, statuses=WantedStatuses(status_settled))
    namespaces = {o["metadata"]["namespace"] for kind in ("BackupConfiguration", "BackupSession", "RestoreSession")
                  for o in world.all(kind)}
    for ns in sorted(namespaces):
        out.objects += job_identity(ns)
    config_phase: dict[tuple[str, str], str] = {}
    shared: dict[tuple, dict] = {}  # equal new conditions of different configurations, kept once
    for config in world.all("BackupConfiguration"):
        phase = _configuration(world, config, now, settings, out, shared)
        config_phase[(config["metadata"]["namespace"], config["metadata"]["name"])] = phase
    backup_sessions(world, config_phase, now, settings, out)
    for restore in world.all("RestoreSession"):
        restore_session(world, restore, now, settings, out)
    out.objects, out.identities, out.statuses = list(wanted), wanted.identities, list(out.statuses)
    return out


class _Refused(StashplanError):
    """A configuration refused at plan time (it crosses a namespace boundary, or its Task needs commands this
    machine lacks): Invalid, with `lines` as its error lines (plan and apply exit 1)."""

    def __init__(self, message: str, *lines: str) -> None:
        super().__init__(message)
        self.lines = list(lines)


def _configuration(world: World, config: dict, now: datetime, settings: Settings, out: Desired,
                   shared: dict[tuple, dict]) -> str:
    meta, spec = config["metadata"], config["spec"]
    ns, name = meta["namespace"], meta["name"]
    conds = list((config.get("status") or {}).get("conditions") or [])
    repo, repo_id = repository_of(world, config)
    conds = set_condition(conds, "RepositoryFound", repo is not None,
                          "RepositoryAvailable" if repo else "RepositoryNotAvailable",
                          f"Repository {repo_id} {'found' if repo else 'does not exist'}", now)
    secret_ok = repo is not None and not world.secrets_known
    secret_id = ""
    if not world.secrets_known:  # kube mode: the operator holds no Secret permission; the Job reports a missing one
        conds = [c for c in conds if c.get("type") != "BackendSecretFound"]
    elif repo is not None:
        secret, secret_id = storage_secret_of(world, repo, ns)
        secret_ok = secret is not None
        conds = set_condition(conds, "BackendSecretFound", secret_ok,
                              "BackendSecretAvailable" if secret_ok else "BackendSecretNotAvailable",
                              f"Secret {secret_id} {'found' if secret_ok else 'does not exist'}", now)
    target, target_id = target_of(world, config)
    missing = f"BackupConfiguration {ns}/{name}: spec.target.ref: {target_id} does not exist"
    conds = set_condition(conds, "BackupTargetFound", target is not None,
                          "TargetAvailable" if target else "TargetNotAvailable",
                          f"{target_id} {'found' if target else 'does not exist'}", now)
    out.notes += local_exec_hook_notes("BackupConfiguration", config, settings)
    valid, message = True, "all checks passed"
    resolved: tasks.ResolvedTask | None = None
    wal: WalReceive | None = None
    try:
        if refused := refused_field("BackupConfiguration", config):
            raise _Refused(refused.split(": ", 1)[1], refused)
        if crossing := foreign_target("BackupConfiguration", config):
            raise _Refused(crossing.split(": ", 1)[1], crossing)
        if denied := repository_denied_for(world, repo, ns):
            raise _Refused(denied, f"BackupConfiguration {ns}/{name}: spec.repository: {denied}")
        if not spec.get("schedule"):
            raise StashplanError("spec.schedule is required: it is the trigger CronJob's schedule")
        resolved = tasks.resolve_task("backup", spec.get("task"), target, world.tasks)
        _check_functions(world, resolved.name)
        wal = wal_receive_of(name, resolved.name, resolved.params)
        if wal is not None and settings.command_available is not None and not settings.command_available(
                RECEIVER_COMMAND):
            line = (f"BackupConfiguration {ns}/{name}: spec.task.params: walArchive receive runs {RECEIVER_COMMAND!r}, "
                    "which is not a command on this machine: local mode runs the receiver here")
            raise _Refused(line.split(": ", 1)[1], line)
        if missing_commands := _missing_commands(world, resolved.name, settings, f"BackupConfiguration {ns}/{name}"):
            raise _Refused(missing_commands[0].split(": ", 1)[-1], *missing_commands)
        out.notes += [f"BackupConfiguration {ns}/{name}: {note}"
                      for note in check_backup_params(world, config, settings, resolved)]
        if resolved.note:
            out.notes.append(f"BackupConfiguration {ns}/{name}: {resolved.note}")
    except (StashplanError, ValueError, KeyError) as exc:
        valid, message = False, str(exc)
        if isinstance(exc, tasks.NoAddonError):
            out.refusals.append(f"BackupConfiguration {ns}/{name}: spec.task: {exc}")
        elif isinstance(exc, _Refused):
            out.refusals += exc.lines
        elif target is None:
            out.refusals.append(f"{missing}, and without it no Task can be chosen (spec.task.name is empty)")
        else:  # Invalid: one error line naming it, and plan/apply exit 1 (everything else is still applied)
            out.refusals.append(f"BackupConfiguration {ns}/{name}: {message}")
    if valid and target is None:
        out.warnings.append(f"{missing}; no backup runs until it does (KubeDB creates it with its database)")
    if valid and repo is None:
        out.warnings.append(f"BackupConfiguration {ns}/{name}: spec.repository: Repository {repo_id} does not exist; "
                            "no backup runs until it does")
    elif valid and not secret_ok and secret_id:
        out.warnings.append(f"BackupConfiguration {ns}/{name}: Repository {repo_id}: spec.backend.storageSecretName: "
                            f"Secret {secret_id} does not exist; no backup runs until it does")
    conds = set_condition(conds, "ValidationPassed", valid,
                          "ResourceValidationPassed" if valid else "ResourceValidationFailed", message, now)
    if valid:
        out.objects.append(trigger_cronjob(config, settings))
        out.objects += custom_identity_bindings(config)
        if wal is not None and resolved is not None and (receiver := wal_receive_deployment(
                world, config, settings, resolved, wal)) is not None:
            out.objects.append(receiver)
    conds = set_condition(conds, "CronJobCreated", valid,
                          "CronJobCreationSucceeded" if valid else "CronJobCreationFailed",
                          f"CronJob {ns}/{cronjob_name(name, _target_namespace(config), ns)}" if valid
                          else "not created: validation failed", now)
    phase = "Invalid" if not valid else ("Ready" if repo and secret_ok and target else "NotReady")
    status = {"phase": phase, "observedGeneration": meta.get("generation", 1),
              "conditions": _stored_if_equal(conds, (config.get("status") or {}).get("conditions"), shared)}
    out.statuses.append(StatusChange("BackupConfiguration", ns, name, status,
                                     f"phase {phase}" + ("" if valid else f": {message}")))
    return phase


def _stored_if_equal(conds: list[dict], stored: list[dict] | None, shared: dict[tuple, dict]) -> list[dict]:
    """`conds` with each condition equal to a stored one replaced by the stored dict, and each other one by the
    first equal condition of another configuration (`shared`; most repeat: "Repository ns/repo found" at one time),
    else its short strings interned: 50,000 configurations then keep one copy of each. Nothing changes these dicts
    (set_condition and the clusters copy what they are given)."""
    by_type = {c.get("type"): c for c in stored or () if isinstance(c, dict)}
    out = []
    for c in conds:
        old = by_type.get(c["type"])
        if old is not None and old == c:
            out.append(old)
            continue
        # Only all-string conditions (what set_condition makes) are shared: the key keeps 1 and True apart.
        key = tuple(c.items()) if all(type(v) is str for v in c.values()) else None
        if key is not None and (same := shared.get(key)) is not None:
            out.append(same)
            continue
        new = {k: sys.intern(v) if type(v) is str and len(v) <= 64 else v for k, v in c.items()}
        if key is not None:
            shared[key] = new
        out.append(new)
    return out


def _check_functions(world: World, task_name: str) -> None:
    task = world.tasks.get(task_name)
    if task is None:
        raise StashplanError(f"Task {task_name!r} not found")
    for step in (task.get("spec") or {}).get("steps") or []:
        if step.get("name") not in world.functions:
            raise StashplanError(f"Task {task_name!r} step names Function {step.get('name')!r}, which does not exist or "
                                 "was refused")


def _missing_commands(world: World, task_name: str, settings: Settings, who: str) -> list[str]:
    """In local mode, the Task's Functions whose command is not on this machine (their Job could only fail)."""
    if settings.command_available is None:
        return []
    out = []
    for step in (world.tasks[task_name].get("spec") or {}).get("steps") or []:
        spec = (world.functions[step["name"]].get("spec") or {})
        argv = [str(a) for a in (spec.get("command") or [])] + [str(a) for a in (spec.get("args") or [])]
        if argv and "${" not in argv[0] and argv[0] != "stashplan" and not settings.command_available(argv[0]):
            out.append(f"{who}: Function {step['name']} (image {spec.get('image')}) runs {argv[0]!r}, which is not a "
                       "command on this machine: local mode runs each container's command here")
    return out


def _target_namespace(config: dict) -> str:
    ref = (config["spec"].get("target") or {}).get("ref") or {}
    return str(ref.get("namespace") or config["metadata"]["namespace"])



def trigger_cronjob(config: dict, settings: Settings) -> dict:
    meta, spec = config["metadata"], config["spec"]
    invoker = {INVOKER_TYPE: "BackupConfiguration", INVOKER_NAME: meta["name"]}
    container: dict = {
        "name": "stash-trigger",
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["stashplan"],
        "args": ["trigger", meta["name"], f"--namespace={meta['namespace']}"],
    }
    pod: dict = {"restartPolicy": "Never", "serviceAccountName": JOB_IDENTITY, "containers": [container]}
    apply_runtime(pod, container, spec.get("runtimeSettings"))
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(meta["name"], _target_namespace(config), meta["namespace"]),
            "namespace": meta["namespace"],
            "labels": managed_labels("backup-trigger", invoker),
            "ownerReferences": [owner_ref(config)],
        },
        "spec": {
            "schedule": spec["schedule"],
            "suspend": bool(spec.get("paused", False)),
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": {**invoker, "stash.appscode.com/delete-job-on-completion": "true"}},
                "spec": {"backoffLimit": 0, "template": {"spec": pod}},
            },
        },
    }
