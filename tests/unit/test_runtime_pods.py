"""The Job pod in a cluster carries a session's runtimeSettings, tempDir and interimVolumeTemplate as Stash's
would: pod fields on the pod, container fields and nice/ionice (as env) on the transfer container, volumes."""

from __future__ import annotations

from datetime import UTC, datetime

from stashplan.api import builtin_addons, validate_objects
from stashplan.desired.compute import Settings, World, compute

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RUNTIME = {
    "pod": {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "backup", "operator": "Exists"}],
            "serviceAccountName": "backup-sa", "securityContext": {"runAsUser": 999, "fsGroup": 999},
            "priorityClassName": "low", "podLabels": {"team": "db"}, "podAnnotations": {"note": "nightly"},
            "affinity": {"nodeAffinity": {}}, "imagePullSecrets": [{"name": "regcred"}],
            "runtimeClassName": "gvisor", "automountServiceAccountToken": False},
    "container": {"resources": {"limits": {"memory": "1Gi", "cpu": "200m"}},
                  "securityContext": {"readOnlyRootFilesystem": True, "runAsNonRoot": True},
                  "nice": {"adjustment": 5}, "ionice": {"class": 2, "classData": 7},
                  "env": [{"name": "LEVEL", "value": "debug"},
                          {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                  "envFrom": [{"configMapRef": {"name": "extra"}}],
                  "livenessProbe": {"exec": {"command": ["true"]}}},
}


def world(**spec: object) -> World:
    docs = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
         "stringData": {"RESTIC_PASSWORD": "x"}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository", "metadata": {"name": "repo", "namespace": "demo"},
         "spec": {"backend": {"s3": {"endpoint": "http://s3", "bucket": "b"}, "storageSecretName": "repo-secret"}}},
        {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding", "metadata": {"name": "pg", "namespace": "demo"},
         "spec": {"type": "kubedb.com/postgres", "clientConfig": {"url": "postgres://pg:5432/app"}}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
         "metadata": {"name": "pg-backup", "namespace": "demo"},
         "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"}, "target": {"ref": {"name": "pg"}},
                  "retentionPolicy": {"name": "k", "keepLast": 1, "prune": True}, **spec}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupSession",
         "metadata": {"name": "pg-backup-1", "namespace": "demo", "creationTimestamp": "2026-11-30T11:59:00Z",
                      "uid": "u1"},
         "spec": {"invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration", "name": "pg-backup"}}},
    ]
    objs: dict[str, list[dict]] = {}
    for obj in validate_objects([("t", d) for d in docs]):
        objs.setdefault(obj["kind"], []).append(obj)
    return World(objs, builtin_addons())


def backup_job(**spec: object) -> dict:
    out = compute(world(**spec), NOW, Settings())
    [job] = [o for o in out.objects if o["kind"] == "Job"]
    return job


def test_runtime_settings_shape_the_backup_job_pod() -> None:
    job = backup_job(runtimeSettings=RUNTIME)
    template = job["spec"]["template"]
    pod = template["spec"]
    assert template["metadata"]["labels"]["team"] == "db"
    assert template["metadata"]["labels"]["stash.appscode.com/invoker-name"] == "pg-backup"
    assert template["metadata"]["annotations"] == {"note": "nightly"}
    for key in ("nodeSelector", "tolerations", "serviceAccountName", "securityContext", "priorityClassName",
                "affinity", "imagePullSecrets", "runtimeClassName", "automountServiceAccountToken"):
        assert pod[key] == RUNTIME["pod"][key], key
    [container] = pod["containers"]
    assert container["args"][:2] == ["transfer", "backup"]
    for key in ("resources", "securityContext", "livenessProbe"):
        assert container[key] == RUNTIME["container"][key], key
    # The session's Secrets come first (resolved by the kubelet: the Job needs no Secret permission), with the one
    # the user's env names (given too, so that the transfer masks its value).
    assert container["envFrom"] == [
        {"prefix": "STASHPLAN_SECRET_0_", "secretRef": {"name": "repo-secret", "optional": True}},
        {"prefix": "STASHPLAN_SECRET_1_", "secretRef": {"name": "s", "optional": True}},
        *RUNTIME["container"]["envFrom"]]
    env = container["env"]
    names = [e["name"] for e in env]
    assert names[-5:] == ["NICE_ADJUSTMENT", "IONICE_CLASS", "IONICE_CLASS_DATA", "LEVEL", "TOKEN"]
    assert {e["name"]: e.get("value") for e in env}["NICE_ADJUSTMENT"] == "5"
    assert env[-1]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_temp_dir_and_interim_volume_are_volumes_of_the_job_pod() -> None:
    claim = {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
             "resources": {"requests": {"storage": "2Gi"}}}
    job = backup_job(tempDir={"medium": "Memory", "sizeLimit": "512Mi"},
                     interimVolumeTemplate={"metadata": {"name": "ignored", "labels": {"app": "x"}}, "spec": claim})
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["stash-tmp-dir"] == {"name": "stash-tmp-dir", "emptyDir": {"medium": "Memory", "sizeLimit": "512Mi"}}
    assert volumes["stash-interim-volume"]["ephemeral"] == {
        "volumeClaimTemplate": {"metadata": {"labels": {"app": "x"}}, "spec": claim}}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"/tmp": "stash-tmp-dir", "/stash-interim-volume": "stash-interim-volume"}


def test_no_runtime_settings_no_extra_shape() -> None:
    pod = backup_job()["spec"]["template"]["spec"]
    assert "volumes" not in pod and "nodeSelector" not in pod
    assert not any(e["name"].startswith(("NICE_", "IONICE_")) for e in pod["containers"][0].get("env") or [])


def test_service_account_annotations_are_refused_at_plan_time() -> None:
    refusals: list[str] = []
    kept = validate_objects([("t", {
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
        "metadata": {"name": "b", "namespace": "demo"},
        "spec": {"repository": {"name": "r"}, "target": {"ref": {"name": "pg"}},
                 "retentionPolicy": {"name": "k", "prune": True},
                 "runtimeSettings": {"pod": {"serviceAccountAnnotations": {"a": "b"}}}}})], refusals)
    assert kept == []
    assert refusals == ["t: BackupConfiguration/b: spec.runtimeSettings.pod.serviceAccountAnnotations: refused: "
                        "stashplan makes no ServiceAccount per configuration (Jobs run as stashplan-job or your "
                        "serviceAccountName); annotate your own ServiceAccount"]


def test_unknown_runtime_settings_keys_are_errors_naming_the_field() -> None:
    import pytest

    from stashplan.errors import ManifestError

    with pytest.raises(ManifestError) as err:
        validate_objects([("t", {
            "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
            "metadata": {"name": "b", "namespace": "demo"},
            "spec": {"repository": {"name": "r"}, "target": {"ref": {"name": "pg"}},
                     "retentionPolicy": {"name": "k", "prune": True},
                     "runtimeSettings": {"container": {"nicee": {"adjustment": 5}, "ionice": {"class": 4}}}}})])
    assert sorted(err.value.problems) == [
        "t: BackupConfiguration/b: spec.runtimeSettings.container.ionice.class: Input should be less than or equal to 3",
        "t: BackupConfiguration/b: spec.runtimeSettings.container.nicee: unknown field 'nicee'; did you mean 'nice'?",
    ]
