"""The two controllers a cluster runs for stashplan, played locally against any Cluster.

`CronScheduler` fires CronJobs on schedule (croniter) by creating Jobs from their templates;
`JobRunner` runs each Job's containers as local processes (init containers in order, then the main
one) with the container's env (of the loop's own only PATH, HOME, locale: no credential), as the user its
securityContext names (`stashplan.cluster.local.run_as`), and turns exit codes and deadlines into Job status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter

from stashplan.cluster.base import Cluster
from stashplan.cluster.local.orphans import end_orphan, record_process
from stashplan.cluster.local.run_as import run_as
from stashplan.errors import AlreadyExists, NotFound, StashplanError
from stashplan.objects import owner_ref, parse_time, rfc3339
from stashplan.secrets import Masker, secret_data, secret_values

RUNNER_ANNOTATION = "stashplan.dev/runner"


def _job_finished(job: dict) -> bool:
    status = job.get("status") or {}
    return bool(status.get("succeeded") or status.get("failed"))


class CronScheduler:
    """Creates a Job from a CronJob's jobTemplate when its schedule comes due (latest slot only)."""

    def __init__(self, cluster: Cluster, history_limit: int = 1) -> None:
        self.cluster = cluster
        self.history_limit = history_limit

    def tick(self, now: datetime) -> list[str]:
        changes: list[str] = []
        jobs = self.cluster.list("Job")
        for cj in self.cluster.list("CronJob"):
            spec = cj.get("spec") or {}
            meta = cj["metadata"]
            if spec.get("suspend"):
                continue
            try:
                # The latest slot at or before now (croniter's get_prev excludes an exact match).
                slot = croniter(spec["schedule"], now + timedelta(seconds=1)).get_prev(datetime)
            except (KeyError, ValueError) as exc:
                changes.append(f"CronJob {meta['namespace']}/{meta['name']}: bad schedule: {exc}")
                continue
            last = parse_time((cj.get("status") or {}).get("lastScheduleTime")) or parse_time(
                meta.get("creationTimestamp")
            )
            if last is not None and slot <= last:
                continue
            name = f"{meta['name']}-{int(slot.timestamp()) // 60}"
            template = spec.get("jobTemplate") or {}
            job = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                    "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": rfc3339(slot)},
                    "ownerReferences": [owner_ref(cj)],
                },
                "spec": template.get("spec") or {},
            }
            try:
                self.cluster.create(job)
                changes.append(f"CronJob {meta['namespace']}/{meta['name']} fired Job {name}")
            except AlreadyExists:
                pass
            self.cluster.patch_status("CronJob", meta["namespace"], meta["name"], {"lastScheduleTime": rfc3339(slot)})
        changes += self._clean_history(jobs)
        return changes

    def _clean_history(self, jobs: list[dict]) -> list[str]:
        """Keep the newest `history_limit` finished Jobs per CronJob; delete older ones."""
        by_owner: dict[str, list[dict]] = {}
        for job in jobs:
            for ref in job["metadata"].get("ownerReferences") or []:
                if ref.get("kind") == "CronJob" and _job_finished(job):
                    by_owner.setdefault(ref["uid"], []).append(job)
        out = []
        for owned in by_owner.values():
            owned.sort(key=lambda j: j["metadata"]["creationTimestamp"] + j["metadata"]["name"])
            for old in owned[: -self.history_limit or None] if self.history_limit else owned:
                try:
                    self.cluster.delete("Job", old["metadata"]["namespace"], old["metadata"]["name"])
                    out.append(f"deleted finished Job {old['metadata']['namespace']}/{old['metadata']['name']}")
                except NotFound:
                    pass
        return out


@dataclass
class _Run:
    namespace: str
    name: str
    deadline: float | None
    thread: threading.Thread | None = None
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    reason: str = ""
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    masker: Masker = field(default_factory=Masker)  # the Secret values its pod was given: masked in its log
    done: threading.Event = field(default_factory=threading.Event)


def _signal_group(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


# What a local Job inherits of the loop's environment: what any process needs to run here, no credential. The
# rest of its environment is its own: the pod spec's env/envFrom and how to reach the cluster.
HOST_ENV = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH",
            "VIRTUAL_ENV")


def host_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the loop's environment a local Job starts from (HOST_ENV and the LC_* locale settings)."""
    return {k: v for k, v in environ.items() if k in HOST_ENV or k.startswith("LC_")}


class JobRunner:
    """Runs Jobs' containers as local processes; one thread per running Job, status written on finish.

    Each process's pid and start time are kept in `<log_dir>/<ns>_<job>.pid` while it runs. A Job found
    running under a loop that is gone (killed, even with -9) is never adopted: its process group is ended
    (when the pid still names the same process) and the Job fails with RunnerLost, so its session fails
    once, before anything else may run for that invoker."""

    def __init__(self, cluster: Cluster, env: Mapping[str, str], log_dir: Path) -> None:
        self.cluster = cluster
        self.env = dict(env)
        self.log_dir = log_dir
        self.identity = f"{os.uname().nodename}:{os.getpid()}:{id(self)}"
        self.runs: dict[tuple[str, str], _Run] = {}

    def tick(self, now: datetime) -> list[str]:
        changes: list[str] = []
        for job in self.cluster.list("Job"):
            meta = job["metadata"]
            key = (meta["namespace"], meta["name"])
            status = job.get("status") or {}
            if key in self.runs or _job_finished(job):
                continue
            if status.get("startTime"):
                # Started by a loop that is gone: its process is ended (never adopted), then the Job fails.
                if (meta.get("annotations") or {}).get(RUNNER_ANNOTATION) != self.identity:
                    what = end_orphan(self._pid_file(*key))
                    self._finish_status(job, 1, "RunnerLost", f"the loop running this Job stopped; {what}", now)
                    changes.append(f"Job {key[0]}/{key[1]} failed: runner lost ({what})")
                continue
            self._start(job, now)
            changes.append(f"Job {key[0]}/{key[1]} started")
        for key, run in list(self.runs.items()):
            if run.deadline is not None and time.monotonic() > run.deadline and not run.done.is_set():
                run.reason = "DeadlineExceeded"
                if run.proc is not None and run.proc.poll() is None:
                    os.killpg(run.proc.pid, signal.SIGKILL)
            if run.done.is_set():
                del self.runs[key]
                try:
                    job = self.cluster.get("Job", *key)
                except NotFound:
                    continue
                code = 1 if run.exit_code is None else run.exit_code  # no exit code is never a success
                self._finish_status(job, code, run.reason, "\n".join(run.tail), now)
                verdict = "succeeded" if code == 0 and not run.reason else "failed"
                changes.append(f"Job {key[0]}/{key[1]} {verdict}")
        return changes

    def wait_all(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        for run in list(self.runs.values()):
            run.done.wait(max(0.0, end - time.monotonic()))

    def stop(self, grace: float = 3.0) -> list[str]:
        """End every running Job: SIGTERM to its process group, SIGKILL after `grace` s; each is marked
        Failed (reason LoopStopped), so its session fails on the next plan instead of being lost."""
        for run in self.runs.values():
            if not run.done.is_set():
                run.reason = run.reason or "LoopStopped"
                _signal_group(run.proc, signal.SIGTERM)
        self.wait_all(grace)
        for run in self.runs.values():
            _signal_group(run.proc, signal.SIGKILL)
        self.wait_all(1.0)
        changes = []
        for key, run in list(self.runs.items()):
            del self.runs[key]
            try:
                job = self.cluster.get("Job", *key)
            except NotFound:
                continue
            tail = "\n".join(run.tail) if run.reason != "LoopStopped" else "the loop stopped while this Job ran"
            code = 1 if run.exit_code is None else run.exit_code
            self._finish_status(job, code, run.reason, tail, datetime.now(UTC))
            changes.append(f"Job {key[0]}/{key[1]} {'succeeded' if code == 0 and not run.reason else 'failed'}")
        return changes

    def _pid_file(self, namespace: str, name: str) -> Path:
        return self.log_dir / f"{namespace}_{name}.pid"

    def _start(self, job: dict, now: datetime) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        deadline = spec.get("activeDeadlineSeconds")
        run = _Run(meta["namespace"], meta["name"], time.monotonic() + deadline if deadline else None)
        annotations = dict(meta.get("annotations") or {})
        annotations[RUNNER_ANNOTATION] = self.identity
        meta["annotations"] = annotations
        job = self.cluster.replace(job)
        self.cluster.patch_status("Job", run.namespace, run.name, {"startTime": rfc3339(now), "active": 1})
        pod = ((spec.get("template") or {}).get("spec")) or {}
        containers = list(pod.get("initContainers") or []) + list(pod.get("containers") or [])
        run.thread = threading.Thread(target=self._run, args=(run, containers, pod), daemon=True)
        self.runs[(run.namespace, run.name)] = run
        run.thread.start()

    def _run(self, run: _Run, containers: list[dict], pod: Mapping | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{run.namespace}_{run.name}.log"
        try:
            with open(log_path, "ab") as log:
                for container in containers:
                    try:
                        argv, env, cwd, secrets = self._process_args(run.namespace, container)
                        run.masker = Masker([*run.masker.values, *secrets])
                        identity = run_as(pod or {}, container)  # securityContext: runAsUser, runAsGroup, ...
                        env.update(identity.env)
                    except StashplanError as exc:
                        run.tail.append(str(exc))
                        run.exit_code = 1
                        return
                    log.write(f"--- container {container.get('name')}: {' '.join(argv)}\n".encode())
                    log.flush()
                    run.proc = subprocess.Popen(
                        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, start_new_session=True, **identity.popen_kwargs(),
                    )
                    record_process(self._pid_file(run.namespace, run.name), run.proc.pid)
                    assert run.proc.stdout is not None
                    for raw in run.proc.stdout:
                        line = run.masker(raw.decode(errors="replace"))
                        log.write(line.encode())
                        log.flush()
                        run.tail.append(line.rstrip())
                    run.exit_code = run.proc.wait()
                    if run.exit_code != 0:
                        return
        except OSError as exc:
            run.tail.append(f"cannot start container: {exc}")
            run.exit_code = 127
        except Exception as exc:  # e.g. a NUL byte in the command: the Job fails saying why
            run.tail.append(f"cannot start container: {type(exc).__name__}: {exc}")
            run.exit_code = 1
        finally:
            self._pid_file(run.namespace, run.name).unlink(missing_ok=True)
            run.done.set()

    def _process_args(self, namespace: str, container: dict) -> tuple[list[str], dict[str, str], str | None,
                                                                      list[str]]:
        return container_process(self.cluster, self.env, namespace, container)

    def _finish_status(self, job: dict, exit_code: int, reason: str, tail: str, now: datetime) -> None:
        meta = job["metadata"]
        if exit_code == 0 and not reason:
            status = {
                "active": 0, "succeeded": 1, "completionTime": rfc3339(now),
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": rfc3339(now)}],
            }
        else:
            reason = reason or "BackoffLimitExceeded"
            message = tail.strip() or f"container exited with code {exit_code}"
            status = {
                "active": 0, "failed": 1,
                "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                                "message": message[-2000:], "lastTransitionTime": rfc3339(now)}],
            }
        self.cluster.patch_status("Job", meta["namespace"], meta["name"], status)


def container_process(cluster: Cluster, base_env: Mapping[str, str], namespace: str,
                      container: dict) -> tuple[list[str], dict[str, str], str | None, list[str]]:
    """argv, environment and working directory of a container run as a local process, and the Secret values in
    that environment: of the loop's own environment only HOST_ENV, then `base_env`, then the container's envFrom
    Secrets (optional ones may be missing) and env (values and secretKeyRef)."""
    argv = [str(a) for a in (container.get("command") or [])] + [str(a) for a in container.get("args") or []]
    if not argv:
        raise StashplanError(f"container {container.get('name')!r} has no command")
    if argv[0] == "stashplan":
        argv = [sys.executable, "-m", "stashplan", *argv[1:]]
    env = host_env(os.environ)  # never the loop's own credentials (AWS_*, STASHPLAN_PASSWORD, ...)
    env.update(base_env)
    secrets: list[str] = []
    for source in container.get("envFrom") or []:  # Secrets given by the pod spec (optional: may not exist)
        if ref := source.get("secretRef"):
            try:
                data = secret_data(cluster.get("Secret", namespace, ref["name"]))
            except NotFound:
                if not ref.get("optional"):
                    raise StashplanError(f"Secret {namespace}/{ref['name']} not found") from None
                data = {}
            env.update({str(source.get("prefix") or "") + k: v for k, v in data.items()})
            secrets += secret_values(data)
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif ref := (item.get("valueFrom") or {}).get("secretKeyRef"):
            data = secret_data(cluster.get("Secret", namespace, ref["name"]))
            if ref["key"] not in data:
                raise StashplanError(f"Secret {namespace}/{ref['name']} has no key {ref['key']!r}")
            env[item["name"]] = data[ref["key"]]
            secrets += secret_values({ref["key"]: data[ref["key"]]})
    return argv, env, container.get("workingDir") or None, secrets
