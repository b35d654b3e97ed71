"""A local Job's container runs as its securityContext says: runAsUser, runAsGroup (the container's over the
pod's), supplementalGroups and the passwd HOME, when stashplan runs as root; runAsNonRoot stops a root one."""

from __future__ import annotations

import os
from pathlib import Path

from stashplan.cluster.local.controllers import JobRunner
from stashplan.cluster.local.store import LocalCluster
from tests.e2e.test_local_controllers import job, run_to_end

ROOT = os.geteuid() == 0


def test_the_process_runs_as_the_user_and_groups_its_security_context_names(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    j = job("as-user", 'echo "ids $(id -u) $(id -g) $(id -G) home=$HOME"')
    pod = j["spec"]["template"]["spec"]
    pod["securityContext"] = {"runAsUser": 4321, "runAsGroup": 4322, "supplementalGroups": [777]}
    pod["containers"][0].update(workingDir="/", securityContext={"runAsGroup": 4323})
    cluster.create(j)

    run_to_end(JobRunner(cluster, {}, tmp_path / "logs"))

    status = cluster.get("Job", "demo", "as-user")["status"]
    if ROOT:
        assert status.get("succeeded") == 1, status
        log = (tmp_path / "logs" / "demo_as-user.log").read_text()
        assert "ids 4321 4323 4323 777 home=/" in log
    else:
        assert status["failed"] == 1
        assert "switching user needs stashplan to run as root" in status["conditions"][0]["message"]


def test_run_as_non_root_stops_a_container_that_would_run_as_root(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")
    j = job("non-root", "touch ran")
    j["spec"]["template"]["spec"]["containers"][0].update(workingDir=str(tmp_path),
                                                          securityContext={"runAsNonRoot": True})
    cluster.create(j)

    run_to_end(JobRunner(cluster, {}, tmp_path / "logs"))

    status = cluster.get("Job", "demo", "non-root")["status"]
    if ROOT:
        assert status["failed"] == 1 and not (tmp_path / "ran").exists()
        assert status["conditions"][0]["message"] == "container 'main' has runAsNonRoot and would run as root (uid 0)"
    else:
        assert status["succeeded"] == 1 and (tmp_path / "ran").exists()
