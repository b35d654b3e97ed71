"""Stash's variables for sessions and the Job PodSpec built from a Task's Functions."""

from __future__ import annotations

import kubernetes_validate
import pytest

from stashplan.api import validate_objects
from stashplan.desired.tasks import TaskError, backup_inputs, build_pod_spec, restore_inputs

STASH = "stash.appscode.com/v1beta1"

REPO = {
    "apiVersion": "stash.appscode.com/v1alpha1",
    "kind": "Repository",
    "metadata": {"name": "s3-repo", "namespace": "demo"},
    "spec": {"backend": {"storageSecretName": "s3-secret",
                         "s3": {"endpoint": "http://127.0.0.1:9000", "bucket": "bkt", "prefix": "pg",
                                "region": "us-east-1", "insecureTLS": True}}},
}
BINDING = {
    "apiVersion": "appcatalog.appscode.com/v1alpha1",
    "kind": "AppBinding",
    "metadata": {"name": "sample-postgres", "namespace": "demo"},
    "spec": {"type": "kubedb.com/postgres", "version": "10.14"},
}
CONFIG = {
    "apiVersion": STASH,
    "kind": "BackupConfiguration",
    "metadata": {"name": "pg-backup", "namespace": "demo"},
    "spec": {
        "schedule": "0 * * * *",
        "repository": {"name": "s3-repo"},
        "target": {"ref": {"name": "sample-postgres"}},
        "retentionPolicy": {"name": "keep", "keepLast": 5, "keepDaily": 0, "keepTags": ["a", "b"], "prune": True},
    },
}
SESSION = {"apiVersion": STASH, "kind": "BackupSession",
           "metadata": {"name": "pg-backup-1700000000", "namespace": "demo"},
           "spec": {"invoker": {"kind": "BackupConfiguration", "name": "pg-backup"}}}


def _valid(obj: dict) -> dict:
    (out,) = validate_objects([("test", obj)])
    return out


def test_backup_inputs_are_stashs_variables() -> None:
    inputs = backup_inputs(_valid(CONFIG), _valid(REPO), _valid(BINDING), _valid(SESSION),
                           pushgateway_url="http://127.0.0.1:9091")
    assert inputs == {
        "NAMESPACE": "demo",
        "BACKUP_SESSION": "pg-backup-1700000000",
        "INVOKER_KIND": "BackupConfiguration",
        "INVOKER_NAME": "pg-backup",
        "HOSTNAME": "host-0",
        "REPOSITORY_NAME": "s3-repo",
        "REPOSITORY_NAMESPACE": "demo",
        "REPOSITORY_PROVIDER": "s3",
        "REPOSITORY_BUCKET": "bkt",
        "REPOSITORY_PREFIX": "pg",
        "REPOSITORY_ENDPOINT": "http://127.0.0.1:9000",
        "REPOSITORY_REGION": "us-east-1",
        "REPOSITORY_INSECURE_TLS": "true",
        "REPOSITORY_SECRET_NAME": "s3-secret",
        "REPOSITORY_SECRET_NAMESPACE": "demo",
        "MAX_CONNECTIONS": "0",
        "TARGET_NAME": "sample-postgres",
        "TARGET_NAMESPACE": "demo",
        "TARGET_KIND": "AppBinding",
        "TARGET_API_VERSION": "appcatalog.appscode.com/v1alpha1",
        "TARGET_RESOURCE": "appbindings",
        "TARGET_MOUNT_PATH": "/stash-data",
        "TARGET_APP_VERSION": "10.14",
        "TARGET_APP_TYPE": "kubedb.com/postgres",
        "TARGET_APP_GROUP": "kubedb.com",
        "TARGET_APP_RESOURCE": "postgres",
        "TARGET_APP_REPLICAS": "1",
        "RETENTION_KEEP_LAST": "5",  # keepDaily 0 is not set, as in Stash
        "RETENTION_KEEP_TAGS": "a,b",
        "RETENTION_PRUNE": "true",
        "ENABLE_CACHE": "true",
        "INTERIM_DATA_DIR": "/tmp/stash-interim-volume/data",
        "PROMETHEUS_PUSHGATEWAY_URL": "http://127.0.0.1:9091",
        "PROMETHEUS_JOB_NAME": "backupconfiguration-demo-pg-backup",
    }


def test_restore_inputs_pick_the_rule_for_this_host() -> None:
    restore = _valid({
        "apiVersion": STASH,
        "kind": "RestoreSession",
        "metadata": {"name": "pg-restore", "namespace": "demo"},
        "spec": {
            "repository": {"name": "s3-repo"},
            "target": {"alias": "host-1", "ref": {"name": "sample-postgres"},
                       "rules": [{"targetHosts": ["host-9"], "snapshots": ["aaa"]},
                                 {"sourceHost": "host-0", "snapshots": ["4f2a", "9b1c"]}]},
            "tempDir": {"disableCaching": True},
        },
    })
    local_repo = _valid({**REPO, "spec": {"backend": {"local": {"mountPath": "/backups", "subPath": "pg"}}}})
    inputs = restore_inputs(restore, local_repo, None)
    assert inputs["RESTORE_SESSION"] == "pg-restore" and inputs["INVOKER_KIND"] == "RestoreSession"
    assert (inputs["HOSTNAME"], inputs["SOURCE_HOSTNAME"]) == ("host-1", "host-0")
    assert inputs["RESTORE_SNAPSHOTS"] == "4f2a,9b1c"
    assert inputs["ENABLE_CACHE"] == "false"
    assert (inputs["REPOSITORY_PROVIDER"], inputs["REPOSITORY_BUCKET"], inputs["REPOSITORY_PREFIX"]) == (
        "local", "/backups", "pg")
    assert "TARGET_APP_TYPE" not in inputs and not any(k.startswith("RETENTION_") for k in inputs)


def test_restore_without_rules_leaves_snapshot_selection_to_the_function_default() -> None:
    restore = {"kind": "RestoreSession", "metadata": {"name": "r", "namespace": "demo"},
               "spec": {"target": {"ref": {"name": "db"}}}}
    inputs = restore_inputs(restore, REPO, None)
    assert inputs["RESTORE_SNAPSHOTS"] == "" and inputs["SOURCE_HOSTNAME"] == "host-0"


def _fn(name: str, **spec: object) -> dict:
    return {"apiVersion": STASH, "kind": "Function", "metadata": {"name": name}, "spec": {"image": "busybox", **spec}}


TASK = {
    "apiVersion": STASH,
    "kind": "Task",
    "metadata": {"name": "two-steps"},
    "spec": {
        "steps": [
            {"name": "dump-1.0", "params": [{"name": "outputDir", "value": "/tmp/out"}, {"name": "args", "value": "-a"}]},
            {"name": "update-status", "params": [{"name": "outputDir", "value": "/tmp/out"}]},
        ],
        "volumes": [{"name": "secret-volume", "secret": {"secretName": "${REPOSITORY_SECRET_NAME}"}}],
    },
}
FUNCTIONS = {
    "dump-1.0": _fn("dump-1.0", command=["sh", "-c"], args=["dump ${args:=} --ns=${NAMESPACE:=default} > ${outputDir}/x"],
                    volumeMounts=[{"name": "secret-volume", "mountPath": "/etc/secret"}],
                    runtimeSettings={"env": [{"name": "LEVEL", "value": "${level:=info}"}]}),
    "update-status": _fn("update-status", args=["update-status", "--dir=${outputDir}", "--session=${BACKUP_SESSION}"]),
}


def test_pod_spec_runs_all_but_the_last_step_as_init_containers() -> None:
    pod = build_pod_spec(TASK, FUNCTIONS, {"NAMESPACE": "demo", "BACKUP_SESSION": "s-1",
                                           "REPOSITORY_SECRET_NAME": "s3-secret"}, {"args": "--clean"})
    assert pod == {
        "restartPolicy": "Never",
        "initContainers": [{
            "name": "dump-1-0-0",
            "image": "busybox",
            "command": ["sh", "-c"],
            "args": ["dump --clean --ns=demo > /tmp/out/x"],  # params override step params
            "volumeMounts": [{"name": "secret-volume", "mountPath": "/etc/secret"}],
            "env": [{"name": "LEVEL", "value": "info"}],
            "imagePullPolicy": "IfNotPresent",
        }],
        "containers": [{
            "name": "update-status-1",
            "image": "busybox",
            "args": ["update-status", "--dir=/tmp/out", "--session=s-1"],
            "imagePullPolicy": "IfNotPresent",
        }],
        "volumes": [{"name": "secret-volume", "secret": {"secretName": "s3-secret"}}],
    }
    job_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": pod}
    kubernetes_validate.validate(job_pod, "1.37.0", strict=True)


def test_stash_inputs_win_over_params_of_the_same_name() -> None:
    task = {"metadata": {"name": "t"}, "spec": {"steps": [{"name": "update-status"}]}}
    pod = build_pod_spec(task, FUNCTIONS, {"BACKUP_SESSION": "real"}, {"BACKUP_SESSION": "user", "outputDir": "/o"})
    assert pod["containers"][0]["args"] == ["update-status", "--dir=/o", "--session=real"]
    assert "initContainers" not in pod and "volumes" not in pod


def test_missing_function_names_the_task_and_step() -> None:
    with pytest.raises(TaskError) as info:
        build_pod_spec(TASK, {"dump-1.0": FUNCTIONS["dump-1.0"]}, {}, {})
    assert str(info.value) == "Task two-steps step 1 (update-status): Function 'update-status' not found"
