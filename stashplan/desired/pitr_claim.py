"""A point-in-time restore Job in a cluster: the PersistentVolumeClaim named by Task param `claimName` mounted at
a fixed path, and `--pgdata` made the path inside it (`pgdata`, default `pgdata`). Pure."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from stashplan.api.modes import PITR_MOUNT, pitr_pod_problems
from stashplan.errors import StashplanError

PITR_VOLUME = "stashplan-pitr-data"
DEFAULT_SUBDIR = "pgdata"


def _params(spec: Mapping) -> dict[str, str]:
    task = spec.get("task") or {}
    return {str(p.get("name")): str(p.get("value") or "") for p in task.get("params") or [] if isinstance(p, dict)}


def mount_pitr_claim(pod: dict, spec: Mapping, cluster: bool = False) -> None:
    """With Task param claimName, mount that claim (of the pod's namespace) into the containers that run
    `stashplan transfer pitr-restore` and point their `--pgdata` inside it; nothing otherwise, unless the pod
    runs in a `cluster`, where such containers need the claim. StashplanError naming the param for a claim or
    pgdata that cannot be mounted so, for no claim in a cluster, or for a recovery the Job's image cannot run
    (the session is then Invalid: also for sessions kubectl created, which no manifest check saw)."""
    params = _params(spec)
    claim = params.get("claimName", "")
    restoring = [c for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
                 if "pitr-restore" in [str(a) for a in c.get("args") or []]]
    if not claim and not (cluster and restoring):
        return
    for path, why in pitr_pod_problems(params):
        raise StashplanError(f"{path}: {why}")
    pgdata = posixpath.join(PITR_MOUNT, posixpath.normpath(params.get("pgdata") or DEFAULT_SUBDIR))
    if not restoring:
        return
    volumes = [v for v in pod.get("volumes") or [] if v.get("name") != PITR_VOLUME]
    pod["volumes"] = [*volumes, {"name": PITR_VOLUME, "persistentVolumeClaim": {"claimName": claim}}]
    for container in restoring:
        container["args"] = [f"--pgdata={pgdata}" if str(a).startswith("--pgdata=") else a for a in container["args"]]
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != PITR_VOLUME]
        container["volumeMounts"] = [*mounts, {"name": PITR_VOLUME, "mountPath": PITR_MOUNT}]
