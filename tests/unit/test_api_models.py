"""Value checks of the API models: durations, cron schedules, DNS-1123 names, free-form parts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stashplan.api import parse_duration, repository_provider, validate_objects
from stashplan.api.models.common import check_cron, check_dns_label, check_dns_subdomain
from stashplan.errors import ManifestError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("0", timedelta(0)),
    ],
)
def test_go_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "30 minutes", "1d", "h", "-5m", ""])
def test_invalid_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a valid duration"):
        parse_duration(text)


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 2 * * 1-5", "@daily", "@hourly", "30 1 1,15 * *"])
def test_kubernetes_cron_schedules_are_accepted(schedule: str) -> None:
    assert check_cron(schedule) == schedule


@pytest.mark.parametrize("schedule", ["* * * *", "0 0 * * * *", "61 * * * *", "@every 1h", "daily"])
def test_non_kubernetes_cron_schedules_are_rejected(schedule: str) -> None:
    with pytest.raises(ValueError, match="is not a valid cron schedule"):
        check_cron(schedule)


def test_dns_names() -> None:
    assert check_dns_subdomain("postgres-backup-10.14.0-v4")
    for bad in ["Upper", "under_score", "-lead", "trail-", "a" * 254, ""]:
        with pytest.raises(ValueError):
            check_dns_subdomain(bad)
    assert check_dns_label("demo-1")
    with pytest.raises(ValueError):
        check_dns_label("has.dot")


def test_free_form_parts_accept_anything_but_typed_parts_do_not() -> None:
    config: dict[str, Any] = {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "BackupConfiguration",
        "metadata": {"name": "bc", "namespace": "demo"},
        "spec": {
            "schedule": "0 * * * *",
            "repository": {"name": "r"},
            "target": {"ref": {"name": "db"}},
            "retentionPolicy": {"name": "k", "prune": False},
            "runtimeSettings": {"pod": {"affinity": {"nodeAffinity": {"any": {"thing": 1}}}}},
        },
    }
    (out,) = validate_objects([("mem", config)])
    assert out["spec"]["runtimeSettings"]["pod"]["affinity"]["nodeAffinity"]["any"] == {"thing": 1}
    bad = {**config, "spec": {**config["spec"], "hooks": {"preBackupp": {}}}}
    with pytest.raises(ManifestError) as info:
        validate_objects([("mem", bad)])
    assert info.value.problems == [
        "mem: BackupConfiguration/bc: spec.hooks.preBackupp: unknown field 'preBackupp'; did you mean 'preBackup'?"
    ]


def test_fields_stashplan_does_not_honour_are_refused_one_line_each_and_the_object_left_out() -> None:
    config: dict[str, Any] = {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "BackupConfiguration",
        "metadata": {"name": "bc", "namespace": "demo"},
        "spec": {
            "schedule": "0 * * * *",
            "repository": {"name": "r"},
            "target": {"ref": {"name": "db"}, "paths": ["/data"], "exclude": []},
            "retentionPolicy": {"name": "k", "prune": False},
            "runtimeSettings": {"pod": {"nodeSelector": {"a": "b"}, "serviceAccountAnnotations": {"x": "y"}},
                                "container": {"resources": {}, "lifecycle": {"preStop": {}}}},
        },
    }
    repo = {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository", "metadata": {"name": "r"},
            "spec": {"backend": {"local": {"mountPath": "/r"}}}}
    refusals: list[str] = []
    assert [o["kind"] for o in validate_objects([("mem", config), ("mem", repo)], refusals)] == ["Repository"]
    assert refusals == [
        "mem: BackupConfiguration/bc: spec.runtimeSettings.pod.serviceAccountAnnotations: refused: stashplan makes "
        "no ServiceAccount per configuration (Jobs run as stashplan-job or your serviceAccountName); annotate your "
        "own ServiceAccount",
        "mem: BackupConfiguration/bc: spec.target.paths: refused: only workload and volume targets (Stash's "
        "sidecar) read it; a database is dumped whole",
    ]


def test_unknown_top_level_field_and_enum_value_are_reported() -> None:
    session = {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "BackupSession",
        "metadata": {"name": "s"},
        "sepc": {},
        "spec": {"invoker": {"kind": "Deployment", "name": "x"}},
    }
    with pytest.raises(ManifestError) as info:
        validate_objects([("mem", session)])
    assert info.value.problems == [
        "mem: BackupSession/s: spec.invoker.kind: Input should be 'BackupConfiguration' or 'BackupBatch'",
        "mem: BackupSession/s: sepc: unknown field 'sepc'; did you mean 'spec'?",
    ]


def test_status_keeps_fields_stashplan_does_not_model() -> None:
    repo = {
        "apiVersion": "stash.appscode.com/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "r", "namespace": "demo", "resourceVersion": "7", "uid": "u-1"},
        "spec": {"backend": {"local": {"mountPath": "/r"}}},
        "status": {"totalSize": "1 MiB", "snapshotCount": 2, "integrity": True, "futureField": "kept"},
    }
    (out,) = validate_objects([("mem", repo)])
    assert out["status"] == {"integrity": True, "totalSize": "1 MiB", "snapshotCount": 2, "futureField": "kept"}
    assert out["metadata"]["resourceVersion"] == "7"
    assert repository_provider(out["spec"]) == "local"


def test_appbinding_with_url_and_service_as_kubedb_writes_it_is_accepted() -> None:
    client = {"url": "tcp(sample-mysql.demo.svc:3306)/", "service": {"name": "sample-mysql", "path": "/",
                                                                     "port": 3306, "scheme": "mysql"}}
    binding = {
        "apiVersion": "appcatalog.appscode.com/v1alpha1",
        "kind": "AppBinding",
        "metadata": {"name": "db", "namespace": "demo"},
        "spec": {"clientConfig": client, "type": "kubedb.com/mysql", "version": "8.0.14"},
    }
    (out,) = validate_objects([("f.yaml", binding)])
    assert out["spec"]["clientConfig"] == client


def test_only_appbinding_targets_and_the_restic_driver_are_supported() -> None:
    restore = {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "RestoreSession",
        "metadata": {"name": "r"},
        "spec": {"driver": "VolumeSnapshotter", "repository": {"name": "x"},
                 "target": {"ref": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}},
    }
    with pytest.raises(ManifestError) as info:
        validate_objects([("f", restore)])
    assert info.value.problems == [
        "f: RestoreSession/r: spec.driver: refused: the VolumeSnapshotter driver takes CSI snapshots; stashplan "
        "only runs Restic-style dumps",
        "f: RestoreSession/r: spec.target.ref.kind: refused: only AppBinding (database) targets run in stashplan; "
        "workload and volume targets need Stash's sidecar",
    ]


def test_usage_policy_selector_needs_a_selector() -> None:
    repo = {
        "apiVersion": "stash.appscode.com/v1alpha1",
        "kind": "Repository",
        "metadata": {"name": "r"},
        "spec": {"backend": {"local": {"mountPath": "/r"}}, "usagePolicy": {"allowedNamespaces": {"from": "Selector"}}},
    }
    with pytest.raises(ManifestError) as info:
        validate_objects([("f", repo)])
    assert info.value.problems == [
        "f: Repository/r: spec.usagePolicy.allowedNamespaces: from: Selector needs a selector (matchLabels or "
        "matchExpressions)"
    ]


def test_wrong_shapes_get_plain_messages() -> None:
    task = {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "Task",
        "metadata": {"name": "t", "labels": "x"},
        "spec": {"steps": [{"name": "fn", "params": {"name": "a"}}, {"name": "fn", "params": [{"name": "b",
                                                                                              "value": True}]}],
                 "volumes": "none"},
    }
    with pytest.raises(ManifestError) as info:
        validate_objects([("f", task)])
    assert info.value.problems == [
        "f: Task/t: metadata.labels: must be a mapping (key: value pairs)",
        "f: Task/t: spec.steps[0].params: must be a list",
        "f: Task/t: spec.steps[1].params[0].value: must be a string (quote the value in YAML)",
        "f: Task/t: spec.volumes: must be a list",
    ]


@pytest.mark.parametrize("sub_path", ["../..", "a/../../b", "/etc", "x/.."])
def test_a_local_subpath_outside_mountpath_is_refused_naming_the_field(sub_path: str) -> None:
    repo = {
        "apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
        "metadata": {"name": "escape", "namespace": "demo"},
        "spec": {"backend": {"local": {"mountPath": "/r", "subPath": sub_path}}},
    }
    with pytest.raises(ManifestError) as err:
        validate_objects([("mem", repo)])
    message = str(err.value)
    assert "\n" not in message
    assert "Repository" in message and "escape" in message and "spec.backend.local.subPath" in message
    assert "mountPath" in message


def test_a_local_subpath_inside_mountpath_is_accepted() -> None:
    repo = {
        "apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
        "metadata": {"name": "ok", "namespace": "demo"},
        "spec": {"backend": {"local": {"mountPath": "/r", "subPath": "team-a/db..old"}}},
    }
    (out,) = validate_objects([("mem", repo)])
    assert out["spec"]["backend"]["local"]["subPath"] == "team-a/db..old"
