"""Local mode's Deployment controller and kubelet in one: each Deployment in the store with replicas >= 1 runs its
pod's container as one supervised local process (environment, Secrets and user as a local Job's), restarted with
backoff when it exits, stopped (SIGTERM, SIGKILL after a grace period) when the Deployment is gone, scaled to 0 or
changed; whether it runs is written to the Deployment's status and each exit is logged. One process per
Deployment whatever `replicas` says (stashplan's only Deployment, a WAL receiver, must never run twice)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from stashplan.backoff import RetryPolicy
from stashplan.cluster.base import Cluster
from stashplan.cluster.local.controllers import container_process
from stashplan.cluster.local.orphans import end_orphan, record_process
from stashplan.cluster.local.run_as import run_as
from stashplan.errors import NotFound, StashplanError
from stashplan.objects import rfc3339
from stashplan.secrets import Masker

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)
RESTARTS = RetryPolicy(attempts=1_000_000, base_delay=1.0, max_delay=60.0, jitter=0.0)
STEADY = 60.0  # seconds a process must have run for its next exit to count as the first failure again


@dataclass
class _Process:
    namespace: str
    name: str
    template: str  # the pod template it was started from (a changed template restarts it)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # monotonic
    started_at: str = ""
    failures: int = 0  # exits in a row (reset after a steady run)
    restarts: int = 0
    restart_at: float | None = None  # monotonic: when to start again after an exit
    restart_wall: str = ""  # the same, as a time for the status
    exit_code: int | None = None
    reason: str = ""  # why it is not running
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=5))
    masker: Masker = field(default_factory=Masker)
    pump: threading.Thread | None = None


def _template(deployment: dict) -> str:
    return json.dumps(((deployment.get("spec") or {}).get("template") or {}), sort_keys=True)


def _wanted(deployment: dict) -> bool:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return (1 if replicas is None else int(replicas)) >= 1


class DeploymentSupervisor:
    """Keeps one local process per wanted Deployment; `tick` each loop iteration, `stop` when the loop ends."""

    def __init__(self, cluster: Cluster, env: Mapping[str, str], log_dir: Path, grace: float = 10.0,
                 policy: RetryPolicy = RESTARTS) -> None:
        self.cluster, self.env, self.log_dir, self.grace, self.policy = cluster, dict(env), log_dir, grace, policy
        self.procs: dict[Key, _Process] = {}
        self._written: dict[Key, dict] = {}  # the status last written, so that an unchanged one is not rewritten

    def tick(self, now: datetime) -> list[str]:
        changes: list[str] = []
        deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in self.cluster.list("Deployment")}
        for key, p in list(self.procs.items()):
            d = deployments.get(key)
            if d is None or not _wanted(d) or _template(d) != p.template:
                why = "gone" if d is None else ("scaled to 0" if not _wanted(d) else "changed")
                self._end([p])
                del self.procs[key]
                self._written.pop(key, None)
                changes.append(f"Deployment {key[0]}/{key[1]} {why}: its process stopped")
        for key, d in deployments.items():
            if not _wanted(d):
                self._status(d, now, None)
                continue
            found = self.procs.get(key)
            if found is None:
                p = self.procs[key] = _Process(*key, template=_template(d))
                what = end_orphan(self._pid_file(key))  # one a loop killed earlier left running: never two
                if "ended" in what and "already" not in what:
                    changes.append(f"Deployment {key[0]}/{key[1]}: {what} (left by a stopped loop)")
                changes += self._start(p, d)
            elif (p := found).proc is not None and p.proc.poll() is not None:
                changes.append(self._exited(p))
            elif p.proc is None and p.restart_at is not None and time.monotonic() >= p.restart_at:
                p.restarts += 1
                changes += self._start(p, d)
            self._status(d, now, p)
        return changes

    def stop(self) -> list[str]:
        """End every process (SIGTERM, SIGKILL after the grace period) and record that none runs."""
        procs = list(self.procs.values())
        self._end(procs)
        self.procs.clear()
        now = datetime.now(UTC)
        for p in procs:
            try:
                d = self.cluster.get("Deployment", p.namespace, p.name)
            except NotFound:
                continue
            p.reason, p.restart_at = "LoopStopped", None
            self._status(d, now, p)
        return [f"Deployment {p.namespace}/{p.name}: its process stopped with the loop" for p in procs]

    # -- processes ---------------------------------------------------------------------------------
    def _pid_file(self, key: Key) -> Path:
        return self.log_dir / f"{key[0]}_{key[1]}.deployment.pid"

    def _start(self, p: _Process, deployment: dict) -> list[str]:
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = pod.get("containers") or []
        p.restart_at, p.exit_code, p.reason = None, None, ""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{p.namespace}_{p.name}.log", "ab")  # noqa: SIM115 - closed by the pump
        try:
            if len(containers) != 1:
                raise StashplanError(f"{len(containers)} containers: local mode runs a Deployment of one")
            argv, env, cwd, secrets = container_process(self.cluster, self.env, p.namespace, containers[0])
            identity = run_as(pod, containers[0])
            env.update(identity.env)
            p.masker = Masker([*secrets])
            out.write(f"--- {rfc3339(datetime.now(UTC))} started: {' '.join(argv)}\n".encode())
            out.flush()
            p.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True, **identity.popen_kwargs())
        except (StashplanError, OSError, ValueError) as exc:
            out.close()
            p.proc, p.exit_code = None, 127
            p.tail.append(f"cannot start: {exc}")
            return [self._exited(p)]
        record_process(self._pid_file((p.namespace, p.name)), p.proc.pid)
        p.started, p.started_at = time.monotonic(), rfc3339(datetime.now(UTC))
        p.pump = threading.Thread(target=self._pump, args=(p, p.proc, out), daemon=True)
        p.pump.start()
        return [f"Deployment {p.namespace}/{p.name}: process {p.proc.pid} started"]

    def _pump(self, p: _Process, proc: subprocess.Popen[bytes], out: BinaryIO) -> None:
        """Copy the process's output into its log (Secret values masked), keeping the last lines."""
        assert proc.stdout is not None
        with out:
            for raw in proc.stdout:
                line = p.masker(raw.decode(errors="replace"))
                out.write(line.encode())
                out.flush()
                p.tail.append(line.rstrip())

    def _exited(self, p: _Process) -> str:
        """Record an exit and when to start again (backoff); the line for the loop's log."""
        if p.proc is not None:
            p.exit_code = p.proc.wait()
            if p.pump is not None:
                p.pump.join(5)
            self._pid_file((p.namespace, p.name)).unlink(missing_ok=True)
        ran = time.monotonic() - p.started if p.proc is not None else 0.0
        p.proc = None
        p.failures = 1 if ran >= STEADY else p.failures + 1
        delay = self.policy.delay(p.failures)
        p.restart_at = time.monotonic() + delay
        p.restart_wall = rfc3339(datetime.fromtimestamp(time.time() + delay, UTC))
        p.reason = "ProcessExited"
        last = f": {p.tail[-1]}" if p.tail else ""
        line = (f"Deployment {p.namespace}/{p.name}: its process exited with code {p.exit_code}; starting it again "
                f"in {delay:g}s{last}")
        log.warning("%s", line)
        return line

    def _end(self, procs: list[_Process]) -> None:
        running = [p.proc for p in procs if p.proc is not None and p.proc.poll() is None]
        for sig, wait in ((signal.SIGTERM, self.grace), (signal.SIGKILL, 5.0)):
            for proc in running:
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        pass
            end = time.monotonic() + wait
            while time.monotonic() < end and any(proc.poll() is None for proc in running):
                time.sleep(0.05)
        for p in procs:
            if p.proc is not None:
                p.proc.wait()
                if p.pump is not None:
                    p.pump.join(5)
                self._pid_file((p.namespace, p.name)).unlink(missing_ok=True)
            p.proc = None

    # -- status ------------------------------------------------------------------------------------
    def _status(self, deployment: dict, now: datetime, p: _Process | None) -> None:
        meta = deployment["metadata"]
        key = (meta["namespace"], meta["name"])
        running = p is not None and p.proc is not None and p.proc.poll() is None
        if p is None:
            reason, message = "ScaledToZero", "spec.replicas is 0: no process runs"
        elif running:
            assert p.proc is not None
            reason, message = "ProcessRunning", f"process {p.proc.pid} running since {p.started_at}"
            if p.restarts:
                message += f" ({p.restarts} restart(s))"
        elif p.reason == "LoopStopped":
            reason, message = "LoopStopped", "the loop that runs this process stopped"
        else:
            when = "" if p.restart_at is None else f"; starting again at {p.restart_wall}"
            last = f"; last output: {p.tail[-1]}" if p.tail else ""
            reason, message = "ProcessExited", f"exited with code {p.exit_code}{when}{last}"[:1000]
        ready = 1 if running else 0
        condition: dict[str, str] = {"type": "Available", "status": "True" if running else "False", "reason": reason,
                     "message": message}
        old = self._written.get(key) or (deployment.get("status") or {})
        old_cond: dict = next((c for c in old.get("conditions") or [] if c.get("type") == "Available"), {})
        same = old_cond.get("status") == condition["status"] and old_cond.get("reason") == reason
        condition["lastTransitionTime"] = str(old_cond.get("lastTransitionTime") or "") if same else rfc3339(now)
        status = {"observedGeneration": meta.get("generation", 1), "replicas": 0 if p is None else 1,
                  "readyReplicas": ready, "availableReplicas": ready, "unavailableReplicas": 1 - ready if p else 0,
                  "conditions": [condition]}
        if {k: old.get(k) for k in status} == status:
            return
        try:
            self.cluster.patch_status("Deployment", *key, status)
            self._written[key] = status
        except NotFound:
            self._written.pop(key, None)
