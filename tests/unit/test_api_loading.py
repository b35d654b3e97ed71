"""Loading manifests: good files and directories, defaults, and one exact problem line per bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stashplan.api import load_paths, validate_objects
from stashplan.errors import ManifestError

DATA = Path(__file__).resolve().parents[1] / "data" / "manifests"
GOOD = DATA / "good"
BAD = DATA / "bad"


def _by_name(objs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def _problems(*paths: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_paths(list(paths))
    return info.value.problems


def test_directory_is_loaded_recursively_in_sorted_order_with_empty_documents_ignored() -> None:
    objs = load_paths([GOOD])
    names = [f"{o['kind']}/{o['metadata']['name']}" for o in objs]
    assert names == [
        "Namespace/demo",
        "AppBinding/sample-mysql",
        "BackupConfiguration/sample-mysql-backup",
        "AppBinding/sample-postgres",
        "BackupConfiguration/sample-postgres-backup",
        "RestoreSession/sample-postgres-restore",
        "Secret/s3-secret",
        "Repository/s3-repo",
        "Repository/local-repo",
        "BackupSession/sample-postgres-backup-1700000000",
    ]


def test_files_and_directories_can_be_mixed() -> None:
    objs = load_paths([GOOD / "00-namespace.yaml", GOOD / "databases"])
    assert [o["kind"] for o in objs] == ["Namespace", "AppBinding", "BackupConfiguration", "AppBinding",
                                         "BackupConfiguration", "RestoreSession"]


def test_backup_configuration_gets_stash_defaults_in_kubernetes_json_shape() -> None:
    config = _by_name(load_paths([GOOD]))[("BackupConfiguration", "sample-postgres-backup")]
    spec = config["spec"]
    assert config["apiVersion"] == "stash.appscode.com/v1beta1"
    assert spec["backupHistoryLimit"] == 1
    assert spec["driver"] == "Restic"
    assert spec["target"]["alias"] == "host-0"
    assert spec["retryConfig"] == {"maxRetry": 1, "delay": "5m"}
    assert spec["timeOut"] == "1h30m"
    assert spec["task"]["params"] == [{"name": "args", "value": "--clean"}]
    assert spec["runtimeSettings"] == {"container": {"resources": {"limits": {"memory": "512Mi"}}}}
    assert "paused" not in spec and "hooks" not in spec  # None fields are omitted, not null


def test_user_values_override_defaults() -> None:
    config = _by_name(load_paths([GOOD]))[("BackupConfiguration", "sample-mysql-backup")]
    assert config["spec"]["backupHistoryLimit"] == 3
    assert config["spec"]["target"]["alias"] == "mysql-primary"
    assert config["spec"]["target"]["ref"]["kind"] == "AppBinding"  # defaulted ref kind
    assert config["spec"]["paused"] is True
    assert "retryConfig" not in config["spec"]


def test_namespace_defaults_to_default_and_usage_policy_to_same() -> None:
    objs = _by_name(load_paths([GOOD]))
    local = objs[("Repository", "local-repo")]
    s3 = objs[("Repository", "s3-repo")]
    assert local["metadata"]["namespace"] == "default"
    assert local["spec"]["usagePolicy"] == {"allowedNamespaces": {"from": "All"}}
    assert s3["spec"]["usagePolicy"] == {"allowedNamespaces": {"from": "Same"}}
    assert s3["spec"]["backend"]["s3"]["endpoint"] == "http://127.0.0.1:9000"
    assert local["spec"]["backend"]["local"]["hostPath"] == {"path": "/data/stash-repo"}


def test_json_restore_session_and_status_are_kept() -> None:
    objs = _by_name(load_paths([GOOD]))
    restore = objs[("RestoreSession", "sample-postgres-restore")]
    assert restore["spec"]["target"]["rules"] == [{"snapshots": ["latest"]}]
    session = objs[("BackupSession", "sample-postgres-backup-1700000000")]
    assert session["status"]["phase"] == "Succeeded"
    assert session["status"]["targets"][0]["stats"][0]["snapshots"][0]["name"] == "4f2a9c1e"
    assert session["metadata"]["labels"]["stash.appscode.com/invoker-type"] == "BackupConfiguration"


def test_secret_and_namespace_pass_through_unchanged() -> None:
    objs = _by_name(load_paths([GOOD]))
    secret = objs[("Secret", "s3-secret")]
    assert secret["stringData"]["RESTIC_PASSWORD"] == "not-a-real-password"
    assert secret["data"] == {"AWS_SECRET_ACCESS_KEY": "bWluaW8xMjM="}
    assert objs[("Namespace", "demo")]["metadata"] == {"name": "demo"}


def test_cluster_scoped_kinds_lose_a_namespace() -> None:
    objs = validate_objects(
        [("mem", {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Function",
                  "metadata": {"name": "fn", "namespace": "demo"}, "spec": {"image": "busybox"}})]
    )
    assert objs[0]["metadata"] == {"name": "fn"}


def test_typos_bad_cron_and_bad_duration_are_each_one_line() -> None:
    path = BAD / "config-typos.yaml"
    assert _problems(path) == [
        f"{path}: BackupConfiguration/typos: spec.schedule: '*/5 * * *' is not a valid cron schedule: expected 5 "
        "fields 'minute hour day-of-month month day-of-week' (e.g. '*/30 * * * *') or one of @annually, @daily, "
        "@hourly, @midnight, @monthly, @weekly, @yearly",
        f"{path}: BackupConfiguration/typos: spec.timeOut: '30 minutes' is not a valid duration: use a number "
        "with a unit (h, m, s, ms), e.g. '30m' or '1h30m'",
        f"{path}: BackupConfiguration/typos: spec.schedul: unknown field 'schedul'; did you mean 'schedule'?",
        f"{path}: BackupConfiguration/no-prune: spec.task.params[0].valu: unknown field 'valu'; did you mean 'value'?",
        f"{path}: BackupConfiguration/no-prune: spec.retentionPolicy.keepLast: Input should be greater than or "
        "equal to 0",
        f"{path}: BackupConfiguration/no-prune: spec.retentionPolicy.prune: required field is missing",
    ]


def test_repository_needs_exactly_one_backend_and_a_valid_name() -> None:
    path = BAD / "repository-backends.yaml"
    assert _problems(path) == [
        f"{path}: Repository/two-backends: spec.backend: set exactly one backend of local, s3, gcs, azure, swift, "
        "b2, rest (found: local, s3)",
        f"{path}: Repository/no-backend: spec.backend: set exactly one backend of local, s3, gcs, azure, swift, b2, "
        "rest (found: none)",
        f"{path}: Repository/Bad_Name: apiVersion: Input should be 'stash.appscode.com/v1alpha1'",
        f"{path}: Repository/Bad_Name: metadata.name: 'Bad_Name' is not a valid name: use lowercase letters, "
        "digits, '-' and '.', starting and ending with a letter or digit (DNS-1123 subdomain, at most 253 "
        "characters)",
    ]


def test_unknown_kinds_missing_kind_non_objects_and_bad_secret_values() -> None:
    path = BAD / "kinds.yaml"
    problems = _problems(path)
    assert problems == [
        f"{path}: document 3: expected an object with apiVersion and kind, found a list",
        f"{path}: Deployment/web: kind: unsupported kind 'Deployment'; supported: Repository, BackupConfiguration, "
        "BackupSession, RestoreSession, Task, Function, AppBinding, BackupBlueprint, Secret, Namespace",
        f"{path}: ?/kindless: kind: required field is missing",
        f"{path}: Secret/creds: data.password: is not valid base64 (use stringData for plain text)",
        f"{path}: Secret/creds: stringData.port: must be a string (quote it)",
    ]
    assert not any("not base64!" in line for line in problems)  # secret values never echoed


def test_task_without_steps_and_function_without_image() -> None:
    path = BAD / "task-function.yaml"
    assert _problems(path) == [
        f"{path}: Task/empty-task: spec.steps: List should have at least 1 item after validation, not 0",
        f"{path}: Function/no-image: spec.image: required field is missing",
        f"{path}: Function/no-image: spec.imag: unknown field 'imag'; did you mean 'image'?",
    ]


def test_yaml_syntax_error_names_file_and_line_without_traceback() -> None:
    path = BAD / "yaml-syntax.yaml"
    assert _problems(path) == [
        f"{path}: line 8: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 7)"
    ]


def test_yaml_indentation_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "indent.yaml"
    path.write_text("kind: Task\nmetadata:\n  name: t\n   spec: {}\n")
    assert _problems(path) == [f"{path}: line 4: invalid YAML: mapping values are not allowed in this context"]


def test_duplicate_yaml_key_is_an_error_not_a_silent_overwrite() -> None:
    path = BAD / "duplicate-key.yaml"
    assert _problems(path) == [f"{path}: line 8: invalid YAML: duplicate key 'backend'"]


def test_problems_of_every_file_are_collected_together() -> None:
    problems = _problems(BAD)
    files = {line.split(": ", 1)[0] for line in problems}
    assert files == {str(p) for p in BAD.iterdir()}
    assert len(problems) == 6 + 4 + 5 + 3 + 1 + 1


def test_missing_path_is_reported_with_other_problems() -> None:
    missing = DATA / "does-not-exist.yaml"
    problems = _problems(missing, BAD / "duplicate-key.yaml")
    assert problems[0] == f"{missing}: no such file or directory"
    assert len(problems) == 2


def test_invalid_json_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{\n  "kind": "Task",\n  "metadata": {name: 1}\n}\n')
    assert _problems(path) == [f"{path}: line 3: invalid JSON: Expecting property name enclosed in double quotes"]


def test_same_object_in_two_files_is_a_duplicate(tmp_path: Path) -> None:
    task = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Task", "metadata": {"name": "t"},
            "spec": {"steps": [{"name": "fn"}]}}
    (tmp_path / "a.json").write_text(json.dumps(task))
    (tmp_path / "b.json").write_text(json.dumps(task))
    assert _problems(tmp_path) == [
        f"{tmp_path / 'b.json'}: Task/t: metadata.name: duplicate; already defined in {tmp_path / 'a.json'}"
    ]


def test_kubernetes_list_documents_are_expanded_and_dot_directories_skipped(tmp_path: Path) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    (tmp_path / "list.yaml").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [ns]}))
    (tmp_path / ".stashplan").mkdir()
    (tmp_path / ".stashplan" / "junk.yaml").write_text("{{{")
    (tmp_path / "notes.txt").write_text("{{{")
    assert load_paths([tmp_path]) == [ns]


def test_numbers_in_param_values_become_strings() -> None:
    objs = validate_objects(
        [("mem", {"apiVersion": "stash.appscode.com/v1beta1", "kind": "Task", "metadata": {"name": "t"},
                  "spec": {"steps": [{"name": "fn", "params": [{"name": "waitTimeout", "value": 600}]}]}})]
    )
    assert objs[0]["spec"]["steps"][0]["params"] == [{"name": "waitTimeout", "value": "600"}]


def test_secret_namespace_is_checked() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "Demo_NS"},
              "stringData": {"RESTIC_PASSWORD": "hunter2"}}
    with pytest.raises(ManifestError) as info:
        validate_objects([("f", secret)])
    assert info.value.problems == [
        "f: Secret/s: metadata.namespace: 'Demo_NS' is not a valid namespace: use lowercase letters, digits and "
        "'-', starting and ending with a letter or digit (DNS-1123 label, at most 63 characters)"
    ]


def test_validate_objects_reports_non_objects() -> None:
    with pytest.raises(ManifestError) as info:
        validate_objects([("stdin", ["not", "an", "object"])])  # type: ignore[list-item]
    assert info.value.problems == ["stdin: expected an object with apiVersion and kind, found list"]


def test_unquoted_yaml_floats_and_base60_numbers_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "binding.yaml"
    path.write_text(
        "apiVersion: appcatalog.appscode.com/v1alpha1\nkind: AppBinding\nmetadata: {name: pg}\n"
        "spec:\n  version: 10.10\n  type: kubedb.com/postgres\n  parameters: {window: 1:30, retries: 3}\n"
    )
    (binding,) = load_paths([path])
    assert binding["spec"]["version"] == "10.10"
    assert binding["spec"]["parameters"] == {"window": "1:30", "retries": 3}


def test_an_invalid_object_also_names_its_refused_fields() -> None:
    config = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
              "metadata": {"name": "deployment-backup", "namespace": "demo"},
              "spec": {"repository": {"name": "repo"}, "schedule": "*/5 * * * *",
                       "retentionPolicy": {"name": "k", "keepLast": 5, "prune": True},
                       "target": {"ref": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                                  "paths": ["/data"]},
                       "hooks": {"postBackup": {"httpPost": {"host": "h", "port": 443,
                                                             "body": "{{ toJson .Status }}"}}}}}
    refusals: list[str] = []

    assert validate_objects([("f.yaml", config)], refusals) == []

    fields = [line.split(": ")[2] for line in refusals]
    assert fields == ["spec.hooks.postBackup.httpPost.body", "spec.target.paths", "spec.target.ref.kind"], refusals
