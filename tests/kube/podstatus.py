"""What the test kubelet reports of a Pod: its containers' runs (process or runc container) and the Pod
status built from them (phase, conditions, container states, a failed container's log as its message)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    """One container of a Pod as the kubelet runs it: argv (a process, or runc for image mode) and its end."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: Path
    cid: str = ""  # a runc container's id (image mode)
    proc: subprocess.Popen[bytes] | None = None
    started: str = ""
    finished: str = ""
    exit_code: int | None = None


def pod_status(pod: dict, containers: list[Container], failed_to_start: str = "") -> dict:
    """The status subresource body for `pod` whose containers are `containers` (init ones included)."""
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or []]
    mains = [c for c in containers if c.name in names]
    statuses = [container_status(c, next(x for x in spec["containers"] if x["name"] == c.name))
                for c in mains]  # fmt: skip
    init_statuses = [container_status(c, {}) for c in containers if c.name not in names]
    exits = [c.exit_code for c in containers if c.exit_code is not None]
    if failed_to_start:
        phase, reason, message = "Failed", "CreateContainerConfigError", failed_to_start
    elif any(code != 0 for code in exits):
        phase, reason, message = "Failed", "", ""
    elif mains and all(c.exit_code == 0 for c in mains):
        phase, reason, message = "Succeeded", "", ""
    else:
        phase, reason, message = "Running", "", ""
    running = phase == "Running" and bool(mains) and all(c.proc is not None for c in mains)
    ready = "True" if running else "False"
    return {"status": {
        "phase": phase if phase != "Running" or running else "Pending",
        "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": (pod.get("status") or {}).get("startTime") or now(),
        "conditions": [{"type": t, "status": s, "lastTransitionTime": now()} for t, s in
                       (("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", ready),
                        ("Ready", ready))],
        "containerStatuses": statuses, "initContainerStatuses": init_statuses,
        **({"reason": reason, "message": message} if reason else {}),
    }}  # fmt: skip


def container_status(c: Container, spec: dict) -> dict:
    state: dict
    if c.exit_code is not None:
        message = ""
        if c.exit_code != 0 and spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = "\n".join(c.log.read_text(errors="replace").splitlines()[-80:])[-4096:]
        state = {"terminated": {"exitCode": c.exit_code, "reason": "Completed" if c.exit_code == 0 else "Error",
                                "startedAt": c.started or now(), "finishedAt": c.finished or now(),
                                **({"message": message} if message else {})}}  # fmt: skip
    elif c.proc is not None:
        state = {"running": {"startedAt": c.started}}
    else:
        state = {"waiting": {"reason": "PodInitializing"}}
    return {"name": c.name, "image": str(spec.get("image") or "local"), "imageID": "", "restartCount": 0,
            "ready": "running" in state, "started": "running" in state, "state": state}
