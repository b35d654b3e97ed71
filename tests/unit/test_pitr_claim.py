"""A point-in-time RestoreSession in a cluster: the restore Job mounts the PersistentVolumeClaim named by Task
param claimName and writes `pgdata` inside it; what cannot be mounted or named is refused at plan time in one
line naming the field. Pure: desired state and the mode checks, no server."""

from __future__ import annotations

from typing import Any

import pytest

from stashplan.api import validate_objects
from stashplan.api.modes import mode_problems
from tests.unit.test_desired_state import _meta, base_world, compute


def _pitr_session(params: dict[str, str], name: str = "rs") -> dict[str, Any]:
    return {
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession", "metadata": _meta(name),
        "spec": {"repository": {"name": "repo"},
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                    "name": "pg"}},
                 "task": {"name": "postgres-pitr-restore-16",
                          "params": [{"name": k, "value": v} for k, v in params.items()]},
                 "pitr": {"targetTime": "2026-11-25T10:00:00Z"}}}


def _job_pod(params: dict[str, str]) -> dict:
    world = base_world()
    world["RestoreSession"] = [_pitr_session(params)]
    [job] = [o for o in compute(world).objects if o["kind"] == "Job"]
    assert job["metadata"]["name"] == "stash-restore-rs"
    return dict(job["spec"]["template"]["spec"])


def test_the_restore_job_mounts_the_claim_and_writes_pgdata_inside_it() -> None:
    pod = _job_pod({"claimName": "pg-restored", "pgdata": "data/main", "recover": "false"})
    assert {"name": "stashplan-pitr-data", "persistentVolumeClaim": {"claimName": "pg-restored"}} in pod["volumes"]
    [container] = pod["containers"]
    assert {"name": "stashplan-pitr-data", "mountPath": "/stashplan-pitr-data"} in container["volumeMounts"]
    args = container["args"]
    assert args[:2] == ["transfer", "pitr-restore"]
    assert "--pgdata=/stashplan-pitr-data/data/main" in args
    assert "--recover=false" in args and "--pg-version=16" in args


def test_pgdata_defaults_to_a_subdirectory_and_recover_false_is_passed_on() -> None:
    pod = _job_pod({"claimName": "pg-restored", "recover": "false"})
    args = pod["containers"][0]["args"]
    assert "--pgdata=/stashplan-pitr-data/pgdata" in args and "--recover=false" in args


def test_without_a_claim_no_volume_is_added() -> None:
    pod = _job_pod({"pgdata": "/srv/pg"})
    assert "stashplan-pitr-data" not in str(pod)
    assert "--pgdata=/srv/pg" in pod["containers"][0]["args"]


def _problems(params: dict[str, str], mode: str) -> list[str]:
    [obj] = validate_objects([("f.yaml", _pitr_session(params))])
    return mode_problems([obj], mode)


def test_a_claim_in_the_sessions_namespace_is_accepted_in_a_cluster() -> None:
    assert _problems({"claimName": "pg-restored", "recover": "false"}, "kube") == []
    assert _problems({"claimName": "pg-restored", "pgdata": "a/b", "recover": "False "}, "kube") == []


@pytest.mark.parametrize("recover", ["", "true"])
def test_recovery_in_a_restore_job_of_a_cluster_is_refused_because_the_image_has_no_server(recover: str) -> None:
    """The shipped image carries PostgreSQL's client programs only: a Job that would recover could only Fail."""
    params = {"claimName": "pg-restored", **({"recover": recover} if recover else {})}
    [line] = _problems(params, "kube")
    assert line.startswith("RestoreSession/demo/rs: spec.task.params: Task param recover: a restore Job in a "
                           "cluster cannot recover the directory"), line
    assert 'give recover "false"' in line
    assert _problems({"pgdata": "/srv/pg", **({"recover": recover} if recover else {})}, "local") == []
    world = base_world()  # the same session created with kubectl and read back: Invalid, no Job
    world["RestoreSession"] = [_pitr_session(params)]
    out = compute(world)
    assert not [o for o in out.objects if o["kind"] == "Job"]
    [line] = out.refusals
    assert line.startswith("RestoreSession demo/rs: spec.task.params: Task param recover: a restore Job"), line


@pytest.mark.parametrize(("params", "mode", "why"), [
    ({"pgdata": "/srv/pg"}, "kube", "Task param claimName must name the PersistentVolumeClaim"),
    ({"claimName": "other/pg-restored"}, "kube", "Task param claimName 'other/pg-restored' names a claim in another "
                                                 "namespace"),
    ({"claimName": "Not_A_Name"}, "kube", "Task param claimName 'Not_A_Name' is not a PersistentVolumeClaim name"),
    ({"claimName": "pg", "pgdata": "/srv/pg"}, "kube", "Task param pgdata '/srv/pg' is absolute; with claimName"),
    ({"claimName": "pg", "pgdata": "../x"}, "kube", "Task param pgdata '../x' is not a directory inside the claim"),
    ({"claimName": "pg", "pgdata": "."}, "kube", "Task param pgdata '.' is not a directory inside the claim"),
    ({"claimName": "pg", "pgdata": "/srv/pg"}, "local", "Task param claimName: local mode runs the Job as a process"),
    ({"pgdata": "/srv/pg", "recover": "yes"}, "local", "Task param recover must be \"true\""),
])
def test_what_cannot_be_mounted_or_named_is_refused_in_one_line(params: dict[str, str], mode: str, why: str) -> None:
    params = {"recover": "false", **params} if mode == "kube" else params
    [line] = _problems(params, mode)
    assert line.startswith(f"RestoreSession/demo/rs: spec.task.params: {why}"), line


def test_a_session_read_back_from_the_cluster_with_a_claim_elsewhere_is_invalid_and_gets_no_job() -> None:
    world = base_world()
    world["RestoreSession"] = [_pitr_session({"claimName": "other/pg-restored", "recover": "false"})]
    out = compute(world)
    assert not [o for o in out.objects if o["kind"] == "Job"]
    [line] = out.refusals
    assert line.startswith("RestoreSession demo/rs: spec.task.params: Task param claimName 'other/pg-restored' "
                           "names a claim in another namespace")


def test_a_session_read_back_from_a_cluster_without_a_claim_is_invalid_and_gets_no_job() -> None:
    """kubectl created it, so no manifest check saw it: in a cluster its Job could only fail (pgdata outside any
    claim); in local mode the same session writes pgdata on this machine."""
    from stashplan.api import builtin_addons
    from stashplan.desired import compute as desired
    from tests.unit.test_desired_state import NOW

    world = base_world()
    world["RestoreSession"] = [_pitr_session({"pgdata": "/srv/pg", "recover": "false"})]
    out = desired.compute(desired.World(world, builtin_addons()), NOW, desired.Settings(cluster=True))
    assert not [o for o in out.objects if o["kind"] == "Job"]
    [line] = out.refusals
    assert line.startswith("RestoreSession demo/rs: spec.task.params: Task param claimName must name the "
                           "PersistentVolumeClaim to restore into"), line
    [status] = [s.status for s in out.statuses if s.kind == "RestoreSession"]
    assert status["phase"] == "Invalid"
    assert "--pgdata=/srv/pg" in str(_job_pod({"pgdata": "/srv/pg"}))  # local mode: accepted as it was


def test_kube_mode_plans_with_the_cluster_setting_and_local_mode_without() -> None:
    from stashplan.cli import _plain_settings, _settings
    from stashplan.cluster.factory import settings as cluster_settings

    kube = cluster_settings("kube", None, "/nonexistent/kubeconfig", None)
    local = cluster_settings("local", None, None, None)
    for make in (lambda cs: _settings(cs, "img", "", "all"), lambda cs: _plain_settings("img", "", cs, "all")):
        assert make(kube).cluster and not make(local).cluster
