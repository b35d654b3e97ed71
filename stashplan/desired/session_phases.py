"""Session phases: a Job per pending BackupSession/RestoreSession, phases that follow Jobs and deadlines,
retries, and history beyond backupHistoryLimit. Pure: part of desired-state computation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from stashplan.desired import tasks
from stashplan.desired.bindings import custom_identity_bindings
from stashplan.desired.boundaries import foreign_target
from stashplan.desired.hook_notes import local_exec_hook_notes
from stashplan.desired.pod_secrets import give_secrets, session_secrets
from stashplan.desired.pods import (
    COMPONENT,
    job_name,
    mount_local_backend,
    session_job,
    session_pod,
)
from stashplan.desired.refused import refused_field
from stashplan.desired.sessions import new_backup_session
from stashplan.desired.task_params import check_pod
from stashplan.desired.world import (
    Deletion,
    Desired,
    Settings,
    StatusChange,
    World,
    repository_denied_for,
    repository_of,
    target_of,
)
from stashplan.errors import StashplanError
from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE
from stashplan.objects import is_managed, parse_duration, parse_time, rfc3339, set_condition
from stashplan.phases import FINAL, SETTLED
from stashplan.units import whole_seconds


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

    return whole_seconds(now - start)


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


def backup_sessions(world: World, config_phase: Mapping[tuple[str, str], str], now: datetime,
                     settings: Settings, out: Desired) -> None:
    sessions = sorted(world.all("BackupSession"),
                      key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]))
    running: set[tuple[str, str]] = {
        (s["metadata"]["namespace"], (s["spec"].get("invoker") or {}).get("name", ""))
        for s in sessions if (s.get("status") or {}).get("phase") == "Running"
    }
    lingering = _invokers_with_active_jobs(world)
    for session in sessions:
        meta, status = session["metadata"], session.get("status") or {}
        ns = meta["namespace"]
        invoker_name = (session["spec"].get("invoker") or {}).get("name", "")
        phase = status.get("phase") or "Pending"
        if phase == "Failed":
            _retry(world, session, now, out)
        if phase in FINAL:
            continue
        if phase == "Running":
            _follow_running(world, "BackupSession", session, now, out)
            continue
        config = world.get("BackupConfiguration", ns, invoker_name)
        if config is None:
            _fail(out, "BackupSession", session, f"BackupConfiguration {ns}/{invoker_name} does not exist", now)
            continue
        if (ns, invoker_name) in lingering and (ns, invoker_name) not in running:
            continue  # a Job of a finished session still runs (e.g. being ended): wait, never run two at once
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


def _invokers_with_active_jobs(world: World) -> set[tuple[str, str]]:
    """(namespace, invoker) of every backup Job that has not finished, whatever its session's phase."""
    out = set()
    for job in world.all("Job"):
        labels = job["metadata"].get("labels") or {}
        status = job.get("status") or {}
        if labels.get(COMPONENT) == "backup-job" and not (status.get("succeeded") or status.get("failed")):
            out.add((job["metadata"]["namespace"], labels.get(INVOKER_NAME, "")))
    return out


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
    repo, _ = repository_of(world, config)
    target, _ = target_of(world, config)
    assert repo is not None  # the configuration is Ready
    resolved = tasks.resolve_task("backup", config["spec"].get("task"), target, world.tasks)
    inputs = tasks.backup_inputs(config, repo, target, session, pushgateway_url=settings.pushgateway_url)
    inputs["STASHPLAN_IMAGE"] = settings.image
    pod = tasks.build_pod_spec(world.tasks[resolved.name], world.functions, inputs, resolved.params)
    mount_local_backend(pod, repo)
    check_pod(pod, settings.check_params)
    session_pod(pod, config["spec"])
    give_secrets(pod, session_secrets(target, repo), repo, meta["namespace"])
    timeout = _timeout(config)
    invoker = {INVOKER_TYPE: "BackupConfiguration", INVOKER_NAME: config["metadata"]["name"]}
    out.objects.append(session_job("BackupSession", session, pod, int(timeout.total_seconds()) if timeout else None,
                                   invoker, config["spec"].get("runtimeSettings")))
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


def check_backup_params(world: World, config: dict, settings: Settings,
                        resolved: tasks.ResolvedTask | None = None) -> list[str]:
    """Refuse, when validating a BackupConfiguration, task params its database tool would refuse (the pod
    its sessions would get, built for a placeholder session); the check's notes (options translated for the
    client that will run). Needs its Repository and target; `resolved` is its Task when the caller has resolved
    it already."""
    if settings.check_params is None:
        return []
    repo, _ = repository_of(world, config)
    target, _ = target_of(world, config)
    if repo is None or target is None:
        return []
    resolved = resolved or tasks.resolve_task("backup", config["spec"].get("task"), target, world.tasks)
    placeholder = new_backup_session(config, 0)
    placeholder["metadata"]["namespace"] = config["metadata"]["namespace"]
    inputs = tasks.backup_inputs(config, repo, target, placeholder, pushgateway_url=settings.pushgateway_url)
    pod = tasks.build_pod_spec(world.tasks[resolved.name], world.functions, inputs, resolved.params)
    return check_pod(pod, settings.check_params)


def _timeout(obj: dict) -> timedelta | None:
    return parse_duration(obj["spec"].get("timeOut"))


def _history(world: World, out: Desired) -> None:
    """Delete completed, stashplan-created BackupSessions beyond each invoker's backupHistoryLimit."""
    by_invoker: dict[tuple[str, str], list[dict]] = {}
    for s in world.all("BackupSession"):
        if (s.get("status") or {}).get("phase") in FINAL and is_managed(s):
            key = (s["metadata"]["namespace"], (s["spec"].get("invoker") or {}).get("name"))
            by_invoker.setdefault(key, []).append(s)  # type: ignore[arg-type]
    for config in world.all("BackupConfiguration"):
        limit = config["spec"].get("backupHistoryLimit")
        limit = 1 if limit is None else int(limit)
        ns, name = config["metadata"]["namespace"], config["metadata"]["name"]
        done = by_invoker.get((ns, name), [])
        done.sort(key=lambda s: (s["metadata"].get("creationTimestamp", ""), s["metadata"]["name"]), reverse=True)
        for old in done[limit:]:
            out.deletions.append(Deletion("BackupSession", ns, old["metadata"]["name"],
                                          f"beyond backupHistoryLimit {limit} of BackupConfiguration {name}"))


def restore_session(world: World, restore: dict, now: datetime, settings: Settings, out: Desired) -> None:
    meta, status = restore["metadata"], restore.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase in SETTLED:
        return
    if phase == "Running":
        _follow_running(world, "RestoreSession", restore, now, out)
        return
    refusal = refused_field("RestoreSession", restore) or foreign_target("RestoreSession", restore)
    repo, repo_id = repository_of(world, restore)
    if refusal is None and (denied := repository_denied_for(world, repo, meta["namespace"])):
        refusal = f"RestoreSession {meta['namespace']}/{meta['name']}: spec.repository: {denied}"
    if refusal is not None:  # never looks at the other namespace's target: refused at plan time
        out.refusals.append(refusal)
        message = refusal.split(": ", 1)[1]
        out.statuses.append(StatusChange("RestoreSession", meta["namespace"], meta["name"],
                                         {"phase": "Invalid", "conditions": set_condition(
                                             status.get("conditions"), "RestoreExecutorEnsured", False,
                                             "FailedToEnsureRestoreExecutor", message, now)}, f"Invalid: {message}"))
        return
    target, target_id = target_of(world, restore)
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
        resolved = tasks.resolve_task("restore", restore["spec"].get("task"), target, world.tasks)
        if resolved.note:
            out.notes.append(f"RestoreSession {meta['namespace']}/{meta['name']}: {resolved.note}")
        out.notes += local_exec_hook_notes("RestoreSession", restore, settings)
        inputs = tasks.restore_inputs(restore, repo, target, pushgateway_url=settings.pushgateway_url)
        inputs["STASHPLAN_IMAGE"] = settings.image
        pod = tasks.build_pod_spec(world.tasks[resolved.name], world.functions, inputs, resolved.params)
        mount_local_backend(pod, repo)
        check_pod(pod, settings.check_params)
        session_pod(pod, restore["spec"], settings.cluster)
        give_secrets(pod, session_secrets(target, repo), repo, meta["namespace"])
    except (StashplanError, ValueError, KeyError) as exc:
        # Invalid: one error line naming it, and plan/apply exit 1 (everything else is still applied)
        field = "spec.task: " if isinstance(exc, tasks.NoAddonError) else ""
        out.refusals.append(f"RestoreSession {meta['namespace']}/{meta['name']}: {field}{exc}")
        out.statuses.append(StatusChange("RestoreSession", meta["namespace"], meta["name"],
                                         {"phase": "Invalid", "conditions": set_condition(
                                             status.get("conditions"), "RestoreExecutorEnsured", False,
                                             "FailedToEnsureRestoreExecutor", str(exc), now)}, f"Invalid: {exc}"))
        return
    timeout = _timeout(restore)
    out.objects += custom_identity_bindings(restore, "RestoreSession")
    labels = {"stash.appscode.com/restore-session": meta["name"]}
    out.objects.append(session_job("RestoreSession", restore, pod,
                                    int(timeout.total_seconds()) if timeout else None, labels,
                                    restore["spec"].get("runtimeSettings")))
    conds = set_condition(status.get("conditions"), "RestoreJobCreated", True, "RestoreJobCreationSucceeded",
                          f"Job {job_name('RestoreSession', meta['name'])} created", now)
    conds = set_condition(conds, "RestoreTargetFound", True, "TargetAvailable", f"{target_id} found", now)
    update: dict = {"phase": "Running", "totalHosts": 1, "conditions": conds}
    if timeout:
        start = parse_time(meta.get("creationTimestamp")) or now
        update["sessionDeadline"] = rfc3339(start + timeout)
    out.statuses.append(StatusChange("RestoreSession", meta["namespace"], meta["name"], update,
                                     f"Running: Job {job_name('RestoreSession', meta['name'])}"))
