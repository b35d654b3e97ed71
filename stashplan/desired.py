"""Desired state: a pure function of the Stash resources, the objects that exist, and `now`.

Each BackupConfiguration gets a trigger CronJob and a status; each pending BackupSession or
RestoreSession gets a Job built from its Task; session phases follow their Jobs and deadlines;
completed sessions beyond `backupHistoryLimit` are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stashplan import tasks
from stashplan.errors import StashplanError
from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE, MANAGED_LABEL, MANAGED_VALUE, identity
from stashplan.objects import (
    is_managed,
    k8s_name,
    owner_ref,
    parse_duration,
    parse_time,
    rfc3339,
    set_condition,
)
from stashplan.sessions import new_backup_session
from stashplan.usage import repository_denied

COMPONENT = "app.kubernetes.io/component"
TERMINAL = frozenset({"Succeeded", "Failed", "Skipped"})


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings that shape what is desired."""

    image: str = "stashplan:latest"
    pushgateway_url: str = ""


@dataclass(frozen=True)
class StatusChange:
    kind: str
    namespace: str
    name: str
    status: dict  # top-level status keys to set
    reason: str = ""


@dataclass(frozen=True)
class Deletion:
    kind: str
    namespace: str
    name: str
    reason: str


@dataclass
class Desired:
    """What should exist: managed objects (CronJobs, Jobs), status changes, deletions, notes for users."""

    objects: list[dict] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class World:
    """Objects by kind and identity, for lookups while computing desired state."""

    def __init__(self, objects: Mapping[str, list[dict]], addons: list[dict] | None = None) -> None:
        self.by_kind = {k: list(v) for k, v in objects.items()}
        self._index = {identity(o): o for objs in self.by_kind.values() for o in objs}
        self.tasks = {o["metadata"]["name"]: o for o in addons or [] if o.get("kind") == "Task"}
        self.functions = {o["metadata"]["name"]: o for o in addons or [] if o.get("kind") == "Function"}
        self.tasks.update({o["metadata"]["name"]: o for o in self.by_kind.get("Task", [])})
        self.functions.update({o["metadata"]["name"]: o for o in self.by_kind.get("Function", [])})

    def all(self, kind: str) -> list[dict]:
        return self.by_kind.get(kind, [])

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return self._index.get((kind, namespace, name))


JOB_IDENTITY = "stashplan-job"  # ServiceAccount + RoleBinding per namespace, bound to this ClusterRole


def compute(world: World, now: datetime, settings: Settings = Settings()) -> Desired:
    out = Desired()
    namespaces = {o["metadata"]["namespace"] for kind in ("BackupConfiguration", "BackupSession", "RestoreSession")
                  for o in world.all(kind)}
    for ns in sorted(namespaces):
        out.objects += job_identity(ns)
    config_phase: dict[tuple[str, str], str] = {}
    for config in world.all("BackupConfiguration"):
        phase = _configuration(world, config, now, settings, out)
        config_phase[(config["metadata"]["namespace"], config["metadata"]["name"])] = phase
    _backup_sessions(world, config_phase, now, settings, out)
    for restore in world.all("RestoreSession"):
        _restore_session(world, restore, now, settings, out)
    return out


# -- BackupConfiguration -> CronJob + status ------------------------------------------------------
def _repository_of(world: World, obj: dict) -> tuple[dict | None, str]:
    ref = obj["spec"].get("repository") or {}
    ns = ref.get("namespace") or obj["metadata"]["namespace"]
    return world.get("Repository", ns, ref.get("name", "")), f"{ns}/{ref.get('name', '')}"


def _repository_denied(world: World, repo: dict | None, user_ns: str) -> str | None:
    if repo is None:
        return None
    ns_obj = world.get("Namespace", "", user_ns)
    labels = {"kubernetes.io/metadata.name": user_ns, **((ns_obj or {}).get("metadata", {}).get("labels") or {})}
    return repository_denied(repo, user_ns, labels)


def _cross_namespace_binding(repo: dict, user_ns: str) -> dict:
    """Lets the pods of `user_ns` read a Repository (and its Secret) that its usagePolicy shares with them."""
    repo_ns = repo["metadata"]["namespace"]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": k8s_name(f"{JOB_IDENTITY}-", user_ns), "namespace": repo_ns,
                         "labels": _labels("job-identity", {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOB_IDENTITY},
            "subjects": [{"kind": "ServiceAccount", "name": JOB_IDENTITY, "namespace": user_ns}]}


def _target_of(world: World, obj: dict) -> tuple[dict | None, str]:
    ref = (obj["spec"].get("target") or {}).get("ref") or {}
    ns = ref.get("namespace") or obj["metadata"]["namespace"]
    return world.get(ref.get("kind", "AppBinding"), ns, ref.get("name", "")), f"{ref.get('kind', 'AppBinding')} {ns}/{ref.get('name', '')}"


def _configuration(world: World, config: dict, now: datetime, settings: Settings, out: Desired) -> str:
    meta, spec = config["metadata"], config["spec"]
    ns, name = meta["namespace"], meta["name"]
    conds = list((config.get("status") or {}).get("conditions") or [])
    repo, repo_id = _repository_of(world, config)
    conds = set_condition(conds, "RepositoryFound", repo is not None,
                          "RepositoryAvailable" if repo else "RepositoryNotAvailable",
                          f"Repository {repo_id} {'found' if repo else 'does not exist'}", now)
    secret_ok = False
    if repo is not None:
        secret_name = (repo["spec"].get("backend") or {}).get("storageSecretName", "")
        secret_ok = world.get("Secret", repo["metadata"]["namespace"], secret_name) is not None
        conds = set_condition(conds, "BackendSecretFound", secret_ok,
                              "BackendSecretAvailable" if secret_ok else "BackendSecretNotAvailable",
                              f"Secret {repo['metadata']['namespace']}/{secret_name} "
                              f"{'found' if secret_ok else 'does not exist'}", now)
    target, target_id = _target_of(world, config)
    conds = set_condition(conds, "BackupTargetFound", target is not None,
                          "TargetAvailable" if target else "TargetNotAvailable",
                          f"{target_id} {'found' if target else 'does not exist'}", now)
    valid, message = True, "all checks passed"
    try:
        if denied := _repository_denied(world, repo, ns):
            raise StashplanError(denied)
        resolved = tasks.resolve_task("backup", spec.get("task"), target, world.tasks)
        _check_functions(world, resolved.name)
        if resolved.note:
            out.notes.append(f"BackupConfiguration {ns}/{name}: {resolved.note}")
    except (StashplanError, ValueError, KeyError) as exc:
        valid, message = False, str(exc)
    conds = set_condition(conds, "ValidationPassed", valid,
                          "ResourceValidationPassed" if valid else "ResourceValidationFailed", message, now)
    if valid:
        out.objects.append(trigger_cronjob(config, settings))
        if repo is not None and repo["metadata"]["namespace"] != ns:
            out.objects.append(_cross_namespace_binding(repo, ns))
    conds = set_condition(conds, "CronJobCreated", valid,
                          "CronJobCreationSucceeded" if valid else "CronJobCreationFailed",
                          f"CronJob {ns}/{cronjob_name(name)}" if valid else "not created: validation failed", now)
    phase = "Invalid" if not valid else ("Ready" if repo and secret_ok and target else "NotReady")
    status = {"phase": phase, "observedGeneration": meta.get("generation", 1), "conditions": conds}
    out.statuses.append(StatusChange("BackupConfiguration", ns, name, status, f"phase {phase}"))
    return phase


def _check_functions(world: World, task_name: str) -> None:
    task = world.tasks.get(task_name)
    if task is None:
        raise StashplanError(f"Task {task_name!r} not found")
    for step in (task.get("spec") or {}).get("steps") or []:
        if step.get("name") not in world.functions:
            raise StashplanError(f"Task {task_name!r} step names Function {step.get('name')!r}, which does not exist")


def job_identity(namespace: str) -> list[dict]:
    """The ServiceAccount that trigger and session pods run as, bound to the `stashplan-job` ClusterRole
    (read sessions, their invoker, Repository, AppBinding, Secrets; write their status; create Events)."""
    labels = _labels("job-identity", {})
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": JOB_IDENTITY, "namespace": namespace, "labels": labels}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": JOB_IDENTITY, "namespace": namespace, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOB_IDENTITY},
         "subjects": [{"kind": "ServiceAccount", "name": JOB_IDENTITY, "namespace": namespace}]},
    ]


def cronjob_name(config_name: str) -> str:
    return k8s_name("stash-trigger-", config_name, limit=52)


def _labels(component: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {MANAGED_LABEL: MANAGED_VALUE, COMPONENT: component, **extra}


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
    _apply_runtime(pod, container, spec.get("runtimeSettings"))
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": _labels("backup-trigger", invoker),
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


_POD_FIELDS = ("serviceAccountName", "nodeSelector", "affinity", "tolerations", "securityContext",
               "imagePullSecrets", "priorityClassName")
_CONTAINER_FIELDS = ("resources", "env", "envFrom", "securityContext")


def _apply_runtime(pod: dict, container: dict, runtime: dict | None) -> None:
    """Copy Stash's runtimeSettings (pod- and container-level) onto a pod spec and its main container."""
    runtime = runtime or {}
    for key in _POD_FIELDS:
        if (runtime.get("pod") or {}).get(key) is not None:
            pod[key] = runtime["pod"][key]
    for key in _CONTAINER_FIELDS:
        value = (runtime.get("container") or {}).get(key)
        if value is None:
            continue
        if key == "env":
            container["env"] = [*(container.get("env") or []), *value]
        else:
            container[key] = value


# -- sessions -----------------------------------------------------------------------------------
def _session_job(kind: str, session: dict, pod: dict, timeout_s: int | None, invoker: Mapping[str, str]) -> dict:
    prefix = "stash-backup-" if kind == "BackupSession" else "stash-restore-"
    component = "backup-job" if kind == "BackupSession" else "restore-job"
    meta = session["metadata"]
    pod = {"serviceAccountName": JOB_IDENTITY, **pod}
    spec: dict = {"backoffLimit": 0, "template": {"metadata": {"labels": dict(invoker)}, "spec": pod}}
    if timeout_s:
        spec["activeDeadlineSeconds"] = timeout_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": k8s_name(prefix, meta["name"]),
            "namespace": meta["namespace"],
            "labels": _labels(component, invoker),
            "ownerReferences": [owner_ref(session)],
        },
        "spec": spec,
    }


def job_name(kind: str, session_name: str) -> str:
    return k8s_name("stash-backup-" if kind == "BackupSession" else "stash-restore-", session_name)


def _job_outcome(job: dict | None) -> tuple[str, str]:
    """("active"|"succeeded"|"failed"|"missing", message) of a Job."""
    if job is None:
        return "missing", ""
    status = job.get("status") or {}
    if status.get("succeeded"):
        return "succeeded", ""
    if status.get("failed"):
        conds = [c for c in status.get("conditions") or [] if c.get("type") == "Failed"]
        msg = conds[0].get("message", "") if conds else ""
        reason = conds[0].get("reason", "") if conds else ""
        return "failed", (f"{reason}: {msg}" if reason else msg) or "the Job failed"
    return "active", ""


def _fail(out: Desired, kind: str, session: dict, message: str, now: datetime, deadline: bool = False) -> None:
    meta = session["metadata"]
    status = dict(session.get("status") or {})
    conds = list(status.get("conditions") or [])
    if deadline:
        conds = set_condition(conds, "DeadlineExceeded", True, "FailedToCompleteWithinDeadline", message, now)
    elif kind == "BackupSession":
        conds = set_condition(conds, "BackupDisrupted", True, "FailedToCompleteDueToDisruption", message, now)
    start = parse_time(meta.get("creationTimestamp"))
    update = {"phase": "Failed", "conditions": conds}
    if start is not None:
        update["sessionDuration"] = _duration(start, now)
    if kind == "BackupSession":
        targets = [dict(t) for t in status.get("targets") or []]
        for t in targets:
            if t.get("phase") not in ("Succeeded", "Failed"):
                t["phase"] = "Failed"
                if not t.get("stats"):
                    t["stats"] = [{"hostname": "host-0", "phase": "Failed", "error": message}]
        update["targets"] = targets
    else:
        update["stats"] = status.get("stats") or [{"hostname": "host-0", "phase": "Failed", "error": message}]
    out.statuses.append(StatusChange(kind, meta["namespace"], meta["name"], update, f"Failed: {message}"))


def _duration(start: datetime, now: datetime) -> str:
    from stashplan.objects import format_duration

    return format_duration(now - start)


def _follow_running(world: World, kind: str, session: dict, now: datetime, out: Desired) -> None:
    """A Running session follows its Job: failure, deadline, or success only if the transfer said so."""
    meta, status = session["metadata"], session.get("status") or {}
    job = world.get("Job", meta["namespace"], job_name(kind, meta["name"]))
    outcome, message = _job_outcome(job)
    deadline = parse_time(status.get("sessionDeadline"))
    if outcome == "failed":
        _fail(out, kind, session, message, now, deadline=bool(deadline and now >= deadline))
    elif outcome == "missing":
        _fail(out, kind, session, f"Job {job_name(kind, meta['name'])} disappeared before it finished", now)
    elif outcome == "succeeded":
        # The transfer writes Succeeded itself; a Job that exited 0 without reporting is not a success.
        _fail(out, kind, session, "the Job completed but the transfer did not report success", now)
    elif deadline is not None and now >= deadline:
        _fail(out, kind, session, f"session deadline {rfc3339(deadline)} passed", now, deadline=True)


def _backup_sessions(world: World, config_phase: Mapping[tuple[str, str], str], now: datetime,
                     settings: Settings, out: Desired) -> None:
    sessions = sorted(world.all("BackupSession"),
                      key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]))
    running: set[tuple[str, str]] = {
        (s["metadata"]["namespace"], (s["spec"].get("invoker") or {}).get("name", ""))
        for s in sessions if (s.get("status") or {}).get("phase") == "Running"
    }
    for session in sessions:
        meta, status = session["metadata"], session.get("status") or {}
        ns = meta["namespace"]
        invoker_name = (session["spec"].get("invoker") or {}).get("name", "")
        phase = status.get("phase") or "Pending"
        if phase == "Failed":
            _retry(world, session, now, out)
        if phase in TERMINAL:
            continue
        if phase == "Running":
            _follow_running(world, "BackupSession", session, now, out)
            continue
        config = world.get("BackupConfiguration", ns, invoker_name)
        if config is None:
            _fail(out, "BackupSession", session, f"BackupConfiguration {ns}/{invoker_name} does not exist", now)
            continue
        if config_phase.get((ns, invoker_name)) != "Ready" or (ns, invoker_name) in running:
            why = ("another BackupSession of this invoker is Running" if (ns, invoker_name) in running
                   else f"BackupConfiguration {ns}/{invoker_name} is not Ready")
            conds = set_condition(status.get("conditions"), "BackupSkipped", True, "SkippedTakingNewBackup", why, now)
            out.statuses.append(StatusChange("BackupSession", ns, meta["name"],
                                             {"phase": "Skipped", "conditions": conds}, f"Skipped: {why}"))
            continue
        try:
            _start_backup(world, config, session, now, settings, out)
            running.add((ns, invoker_name))
        except (StashplanError, ValueError, KeyError) as exc:
            _fail(out, "BackupSession", session, f"cannot build the backup Job: {exc}", now)
    _history(world, out)


def _retry(world: World, session: dict, now: datetime, out: Desired) -> None:
    """Stash's retryConfig: a failed session with retryLeft > 0 gets a new session after `delay`."""
    meta, status = session["metadata"], session.get("status") or {}
    retry_left = int(session["spec"].get("retryLeft") or 0)
    config = world.get("BackupConfiguration", meta["namespace"], (session["spec"].get("invoker") or {}).get("name", ""))
    if retry_left <= 0 or status.get("retried") or config is None:
        return
    next_retry = parse_time(status.get("nextRetry"))
    if next_retry is None:
        delay = parse_duration((config["spec"].get("retryConfig") or {}).get("delay")) or timedelta(0)
        next_retry = now + delay
        if delay:
            out.statuses.append(StatusChange("BackupSession", meta["namespace"], meta["name"],
                                             {"nextRetry": rfc3339(next_retry)}, f"retry at {rfc3339(next_retry)}"))
            return
    if now < next_retry:
        return
    retry = new_backup_session(config, next_retry.timestamp())
    retry["spec"]["retryLeft"] = retry_left - 1
    if world.get("BackupSession", meta["namespace"], retry["metadata"]["name"]) is None:
        out.objects.append(retry)
    out.statuses.append(StatusChange("BackupSession", meta["namespace"], meta["name"],
                                     {"retried": True, "nextRetry": rfc3339(next_retry)},
                                     f"retried as BackupSession {retry['metadata']['name']}"))


def _start_backup(world: World, config: dict, session: dict, now: datetime, settings: Settings,
                  out: Desired) -> None:
    meta = session["metadata"]
    repo, _ = _repository_of(world, config)
    target, _ = _target_of(world, config)
    assert repo is not None  # the configuration is Ready
    resolved = tasks.resolve_task("backup", config["spec"].get("task"), target, world.tasks)
    inputs = tasks.backup_inputs(config, repo, target, session, pushgateway_url=settings.pushgateway_url)
    inputs["STASHPLAN_IMAGE"] = settings.image
    pod = tasks.build_pod_spec(world.tasks[resolved.name], world.functions, inputs, resolved.params)
    containers = pod.get("containers") or []
    if containers:
        _apply_runtime(pod, containers[-1], config["spec"].get("runtimeSettings"))
    timeout = _timeout(config)
    invoker = {INVOKER_TYPE: "BackupConfiguration", INVOKER_NAME: config["metadata"]["name"]}
    out.objects.append(_session_job("BackupSession", session, pod, int(timeout.total_seconds()) if timeout else None, invoker))
    status = session.get("status") or {}
    conds = set_condition(status.get("conditions"), "BackupExecutorEnsured", True, "SuccessfullyEnsuredBackupExecutor",
                          f"Job {job_name('BackupSession', meta['name'])} created", now)
    update: dict = {
        "phase": "Running",
        "conditions": conds,
        "targets": [{"ref": (config["spec"].get("target") or {}).get("ref", {}), "totalHosts": 1,
                     "phase": "Running", "preBackupActions": ["InitializeBackendRepository"],
                     "postBackupActions": ["ApplyRetentionPolicy", "VerifyRepositoryIntegrity",
                                           "SendRepositoryMetrics"]}],
    }
    if timeout:
        start = parse_time(meta.get("creationTimestamp")) or now
        update["sessionDeadline"] = rfc3339(start + timeout)
    out.statuses.append(StatusChange("BackupSession", meta["namespace"], meta["name"], update,
                                     f"Running: Job {job_name('BackupSession', meta['name'])}"))


def _timeout(obj: dict) -> timedelta | None:
    return parse_duration(obj["spec"].get("timeOut"))


def _history(world: World, out: Desired) -> None:
    """Delete completed, stashplan-created BackupSessions beyond each invoker's backupHistoryLimit."""
    for config in world.all("BackupConfiguration"):
        limit = config["spec"].get("backupHistoryLimit")
        limit = 1 if limit is None else int(limit)
        ns, name = config["metadata"]["namespace"], config["metadata"]["name"]
        done = [s for s in world.all("BackupSession")
                if s["metadata"]["namespace"] == ns and (s["spec"].get("invoker") or {}).get("name") == name
                and (s.get("status") or {}).get("phase") in TERMINAL and is_managed(s)]
        done.sort(key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]), reverse=True)
        for old in done[limit:]:
            out.deletions.append(Deletion("BackupSession", ns, old["metadata"]["name"],
                                          f"beyond backupHistoryLimit {limit} of BackupConfiguration {name}"))


def _restore_session(world: World, restore: dict, now: datetime, settings: Settings, out: Desired) -> None:
    meta, status = restore["metadata"], restore.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in TERMINAL or phase in ("Invalid", "Unknown"):
        return
    if phase == "Running":
        _follow_running(world, "RestoreSession", restore, now, out)
        return
    repo, repo_id = _repository_of(world, restore)
    target, target_id = _target_of(world, restore)
    problems = [f"Repository {repo_id} does not exist"] if repo is None else []
    if target is None:
        problems.append(f"{target_id} does not exist")
    if problems:
        # Not an error yet: the repository or target may be applied next; stay Pending and say why.
        conds = set_condition(status.get("conditions"), "RestoreTargetFound", target is not None,
                              "TargetAvailable" if target else "TargetNotAvailable", "; ".join(problems), now)
        out.statuses.append(StatusChange("RestoreSession", meta["namespace"], meta["name"],
                                         {"phase": "Pending", "conditions": conds}, "; ".join(problems)))
        return
    assert repo is not None
    try:
        if denied := _repository_denied(world, repo, meta["namespace"]):
            raise StashplanError(denied)
        resolved = tasks.resolve_task("restore", restore["spec"].get("task"), target, world.tasks)
        if resolved.note:
            out.notes.append(f"RestoreSession {meta['namespace']}/{meta['name']}: {resolved.note}")
        inputs = tasks.restore_inputs(restore, repo, target, pushgateway_url=settings.pushgateway_url)
        inputs["STASHPLAN_IMAGE"] = settings.image
        pod = tasks.build_pod_spec(world.tasks[resolved.name], world.functions, inputs, resolved.params)
    except (StashplanError, ValueError, KeyError) as exc:
        out.statuses.append(StatusChange("RestoreSession", meta["namespace"], meta["name"],
                                         {"phase": "Invalid", "conditions": set_condition(
                                             status.get("conditions"), "RestoreExecutorEnsured", False,
                                             "FailedToEnsureRestoreExecutor", str(exc), now)}, f"Invalid: {exc}"))
        return
    containers = pod.get("containers") or []
    if containers:
        _apply_runtime(pod, containers[-1], restore["spec"].get("runtimeSettings"))
    timeout = _timeout(restore)
    if repo["metadata"]["namespace"] != meta["namespace"]:
        out.objects.append(_cross_namespace_binding(repo, meta["namespace"]))
    labels = {"stash.appscode.com/restore-session": meta["name"]}
    out.objects.append(_session_job("RestoreSession", restore, pod,
                                    int(timeout.total_seconds()) if timeout else None, labels))
    conds = set_condition(status.get("conditions"), "RestoreJobCreated", True, "RestoreJobCreationSucceeded",
                          f"Job {job_name('RestoreSession', meta['name'])} created", now)
    conds = set_condition(conds, "RestoreTargetFound", True, "TargetAvailable", f"{target_id} found", now)
    update: dict = {"phase": "Running", "totalHosts": 1, "conditions": conds}
    if timeout:
        start = parse_time(meta.get("creationTimestamp")) or now
        update["sessionDeadline"] = rfc3339(start + timeout)
    out.statuses.append(StatusChange("RestoreSession", meta["namespace"], meta["name"], update,
                                     f"Running: Job {job_name('RestoreSession', meta['name'])}"))
