"""Local mode at plan time: a securityContext's runAsUser/runAsGroup/supplementalGroups/runAsNonRoot pass (a
change of user only where root starts the Jobs), its other keys and resources are refused, one line each."""

from __future__ import annotations

from stashplan.api.modes import LOCAL_SECURITY_KEYS, mode_problems
from stashplan.cluster.local.run_as import HONOURED


def config(runtime: dict) -> dict:
    return {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
            "metadata": {"name": "db", "namespace": "demo"}, "spec": {"runtimeSettings": runtime}}


def test_root_starts_jobs_as_the_user_asked_for() -> None:
    runtime = {"pod": {"securityContext": {"runAsUser": 5000, "runAsGroup": 5000, "supplementalGroups": [7],
                                           "runAsNonRoot": True}},
               "container": {"securityContext": {"runAsUser": 5001}}}
    assert mode_problems([config(runtime)], "local", (0, 0)) == []


def test_another_user_needs_root_and_the_same_user_does_not() -> None:
    asks = config({"pod": {"securityContext": {"runAsUser": 5000, "runAsGroup": 1000}}})
    [line] = mode_problems([asks], "local", (1000, 1000))
    assert line == ("BackupConfiguration/demo/db: spec.runtimeSettings.pod.securityContext.runAsUser: local mode runs "
                    "the Job as a process on this machine as the user stashplan runs as (uid 1000, gid 1000); "
                    "starting it with runAsUser 5000 needs stashplan to run as root; use a cluster")
    same = config({"container": {"securityContext": {"runAsUser": 1000, "runAsGroup": 1000}}})
    assert mode_problems([same], "local", (1000, 1000)) == []


def test_what_no_process_can_honour_is_refused_one_line_each() -> None:
    runtime = {"container": {"securityContext": {"runAsUser": 0, "readOnlyRootFilesystem": True,
                                                 "capabilities": {"drop": ["ALL"]}},
                             "resources": {"limits": {"memory": "1Gi"}}},
               "pod": {"securityContext": {"fsGroup": 2000}}}
    lines = mode_problems([config(runtime)], "local", (0, 0))
    assert sorted(line.split(": ")[1] for line in lines) == [
        "spec.runtimeSettings.container.resources", "spec.runtimeSettings.container.securityContext.capabilities",
        "spec.runtimeSettings.container.securityContext.readOnlyRootFilesystem",
        "spec.runtimeSettings.pod.securityContext.fsGroup"]
    assert any("no cgroup enforces requests or limits" in line for line in lines)
    assert mode_problems([config(runtime)], "kube") == []


def test_the_plan_and_the_runner_honour_the_same_keys() -> None:
    assert set(LOCAL_SECURITY_KEYS) == set(HONOURED)
