"""Choosing and opening a Cluster: `--cluster local|kube`, `--state`, `--kubeconfig`, or their env vars.

This is the one place that reads STASHPLAN_CLUSTER, STASHPLAN_STATE, KUBECONFIG for the cluster choice.
Local mode is the default when no kubeconfig is given, except inside a pod (KUBERNETES_SERVICE_HOST set); its
state file is the nearest `.stashplan/state.db` in the working directory or a parent, else a new one there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stashplan.cluster.base import Cluster

DEFAULT_STATE = Path(".stashplan") / "state.db"


@dataclass(frozen=True)
class ClusterSettings:
    mode: str  # "local" | "kube"
    state: Path
    kubeconfig: str | None = None
    context: str | None = None

    def env(self) -> dict[str, str]:
        """Environment for a child process (a local Job) so that it reaches the same cluster."""
        out = {"STASHPLAN_CLUSTER": self.mode, "STASHPLAN_STATE": str(self.state.resolve())}
        if self.kubeconfig:
            out["KUBECONFIG"] = self.kubeconfig
        return out


def settings(
    cluster: str | None = None,
    state: str | Path | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClusterSettings:
    env = os.environ if environ is None else environ
    kubeconfig = kubeconfig or None
    in_cluster = bool(env.get("KUBERNETES_SERVICE_HOST"))
    mode = cluster or env.get("STASHPLAN_CLUSTER") or ("kube" if kubeconfig or in_cluster else "local")
    if mode not in ("local", "kube"):
        raise ValueError(f"--cluster must be 'local' or 'kube', not {mode!r}")
    if mode == "kube":
        kubeconfig = kubeconfig or env.get("KUBECONFIG") or None
    state_path = Path(state or env.get("STASHPLAN_STATE") or find_state(Path.cwd()) or DEFAULT_STATE)
    return ClusterSettings(mode=mode, state=state_path, kubeconfig=kubeconfig, context=context)


def find_state(start: Path) -> Path | None:
    """The nearest `.stashplan/state.db` in `start` or a parent folder (as git finds `.git`), or None."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_STATE
        if candidate.is_file():
            return candidate
    return None


def open_cluster(s: ClusterSettings) -> Cluster:
    if s.mode == "kube":
        from stashplan.cluster.kube import KubeCluster

        return KubeCluster(kubeconfig=s.kubeconfig, context=s.context)  # type: ignore[no-any-return]
    from stashplan.cluster.local.store import LocalCluster

    return LocalCluster(s.state)


def connect(
    cluster: str | None = None,
    state: str | Path | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> Cluster:
    """Open the cluster chosen by the arguments, falling back to the environment, then local mode."""
    return open_cluster(settings(cluster, state, kubeconfig, context))
