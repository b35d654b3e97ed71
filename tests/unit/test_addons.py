"""The built-in addons in specs/addons/: they load, resolve for every database, and run the transfer command."""

from __future__ import annotations

import pytest

from stashplan import DEFAULT_IMAGE
from stashplan.api import builtin_addons
from stashplan.desired.tasks import (
    ADDON_VERSIONS,
    BUILTIN_ADDONS,
    TaskError,
    backup_inputs,
    build_pod_spec,
    resolve_task,
    restore_inputs,
)

ADDONS = builtin_addons()
TASKS = {o["metadata"]["name"]: o for o in ADDONS if o["kind"] == "Task"}
FUNCTIONS = {o["metadata"]["name"]: o for o in ADDONS if o["kind"] == "Function"}
DEFAULT_ARGS = {"postgres": "", "mysql": "--all-databases", "mariadb": "--all-databases", "redis": "", "sqlite": ""}
DEFAULT_CMD = {"postgres": "pg_dumpall", "mysql": "mysqldump", "mariadb": "mariadb-dump", "redis": "redis-cli",
               "sqlite": "sqlite3"}

PITR = {f"postgres-{d}-{v}" for d in ("basebackup", "pitr-restore") for v in ("15", "16", "17")}
MULTI_DUMP = ("mysql", "mariadb")  # their backup Functions pass Stash's multiDumpArgs param

REPO = {"kind": "Repository", "metadata": {"name": "repo", "namespace": "demo"},
        "spec": {"backend": {"local": {"mountPath": "/backups"}, "storageSecretName": "s"}}}


def _binding(database: str) -> dict:
    return {"kind": "AppBinding", "metadata": {"name": "db", "namespace": "demo"},
            "spec": {"type": f"kubedb.com/{database}"}}


def test_every_database_has_backup_and_restore_function_and_task() -> None:
    expected = {f"{db}-{d}-{v}" for db, vs in ADDON_VERSIONS.items() for v in vs for d in ("backup", "restore")}
    expected |= PITR  # specs/addons/postgres-pitr.yaml
    assert set(TASKS) == expected and set(FUNCTIONS) == expected
    assert {"postgres-backup-15", "postgres-backup-16", "postgres-restore-17", "mysql-backup-8.0",
            "mariadb-backup-10.11", "redis-backup-7", "sqlite-restore-3"} <= expected
    for task in TASKS.values():
        assert [s["name"] for s in task["spec"]["steps"]] == [task["metadata"]["name"]]


EVERY_VERSION = [(db, v) for db, vs in ADDON_VERSIONS.items() for v in vs]


@pytest.mark.parametrize(("database", "version"), EVERY_VERSION)
def test_backup_function_runs_the_agreed_transfer_command(database: str, version: str) -> None:
    fn = FUNCTIONS[f"{database}-backup-{version}"]["spec"]
    assert fn["image"] == f"${{STASHPLAN_IMAGE:={DEFAULT_IMAGE}}}" and fn["command"] == ["stashplan"]
    assert fn["args"] == [
        "transfer", "backup",
        "--namespace=${NAMESPACE:=default}",
        "--backupsession=${BACKUP_SESSION:=}",
        f"--database={database}",
        f"--backup-cmd=${{backupCMD:={DEFAULT_CMD[database]}}}",
        f"--args=${{args:={DEFAULT_ARGS[database]}}}",
        *(["--multi-dump-args=${multiDumpArgs:=}"] if database in MULTI_DUMP else []),
        "--wait-timeout=${waitTimeout:=300}",
        "--hostname=${HOSTNAME:=host-0}",
        "--pushgateway-url=${PROMETHEUS_PUSHGATEWAY_URL:=}",
    ]


@pytest.mark.parametrize(("database", "version"), EVERY_VERSION)
def test_restore_function_runs_the_agreed_transfer_command(database: str, version: str) -> None:
    fn = FUNCTIONS[f"{database}-restore-{version}"]["spec"]
    assert fn["args"] == [
        "transfer", "restore",
        "--namespace=${NAMESPACE:=default}",
        "--restoresession=${RESTORE_SESSION:=}",
        f"--database={database}",
        "--args=${args:=}",
        "--wait-timeout=${waitTimeout:=300}",
        "--hostname=${HOSTNAME:=host-0}",
        "--source-hostname=${SOURCE_HOSTNAME:=}",
        "--snapshot=${RESTORE_SNAPSHOTS:=latest}",
        "--pushgateway-url=${PROMETHEUS_PUSHGATEWAY_URL:=}",
    ]


@pytest.mark.parametrize("database", list(BUILTIN_ADDONS))
def test_backup_of_each_database_resolves_to_a_runnable_pod(database: str) -> None:
    config = {"kind": "BackupConfiguration", "metadata": {"name": "bc", "namespace": "demo"},
              "spec": {"target": {"ref": {"name": "db"}}, "retentionPolicy": {"name": "k", "prune": True}}}
    session = {"kind": "BackupSession", "metadata": {"name": "bc-1700000000", "namespace": "demo"}}
    resolved = resolve_task("backup", None, _binding(database), TASKS)
    inputs = backup_inputs(config, REPO, _binding(database), session)
    pod = build_pod_spec(TASKS[resolved.name], FUNCTIONS, inputs, resolved.params)
    (container,) = pod["containers"]
    assert container["name"] == f"{database}-backup-{BUILTIN_ADDONS[database].replace('.', '-')}-0"
    assert container["command"] == ["stashplan"]
    assert container["args"] == [
        "transfer", "backup", "--namespace=demo", "--backupsession=bc-1700000000", f"--database={database}",
        f"--backup-cmd={DEFAULT_CMD[database]}", f"--args={DEFAULT_ARGS[database]}",
        *(["--multi-dump-args="] if database in MULTI_DUMP else []), "--wait-timeout=300",
        "--hostname=host-0", "--pushgateway-url=",
    ]


def test_multi_dump_args_param_reaches_the_mysql_backup_command() -> None:
    config = {"kind": "BackupConfiguration", "metadata": {"name": "bc", "namespace": "demo"},
              "spec": {"target": {"ref": {"name": "db"}}}}
    session = {"kind": "BackupSession", "metadata": {"name": "bc-1", "namespace": "demo"}}
    multi = "$args=--databases a $args=--no-data --databases b"
    resolved = resolve_task("backup", {"name": "mysql-backup-8.0.21",
                                       "params": [{"name": "multiDumpArgs", "value": multi}]},
                            _binding("mysql"), TASKS)
    pod = build_pod_spec(TASKS[resolved.name], FUNCTIONS, backup_inputs(config, REPO, _binding("mysql"), session),
                         resolved.params)
    assert f"--multi-dump-args={multi}" in pod["containers"][0]["args"]


def test_user_params_reach_the_restore_command() -> None:
    restore = {"kind": "RestoreSession", "metadata": {"name": "rs", "namespace": "demo"},
               "spec": {"target": {"alias": "h1", "ref": {"name": "db"}, "rules": [{"snapshots": ["4f2a"]}]}}}
    resolved = resolve_task("restore", {"name": "mysql-restore-8.0.21",
                                        "params": [{"name": "args", "value": "--one-database app"}]},
                            _binding("mysql"), TASKS)
    pod = build_pod_spec(TASKS[resolved.name], FUNCTIONS, restore_inputs(restore, REPO, None), resolved.params)
    assert pod["containers"][0]["args"] == [
        "transfer", "restore", "--namespace=demo", "--restoresession=rs", "--database=mysql",
        "--args=--one-database app", "--wait-timeout=300", "--hostname=h1", "--source-hostname=h1",
        "--snapshot=4f2a", "--pushgateway-url=",
    ]


def test_postgres_basebackup_task_runs_the_transfer_basebackup_command() -> None:
    config = {"kind": "BackupConfiguration", "metadata": {"name": "bc", "namespace": "demo"},
              "spec": {"target": {"ref": {"name": "db"}}, "task": {"name": "postgres-basebackup-15"}}}
    session = {"kind": "BackupSession", "metadata": {"name": "bc-1", "namespace": "demo"}}
    resolved = resolve_task("backup", config["spec"]["task"], _binding("postgres"), TASKS)
    assert resolved.name == "postgres-basebackup-15"
    assert {FUNCTIONS[name]["spec"]["image"] for name in PITR} == {f"${{STASHPLAN_IMAGE:={DEFAULT_IMAGE}}}"}
    pod = build_pod_spec(TASKS[resolved.name], FUNCTIONS, backup_inputs(config, REPO, _binding("postgres"), session),
                         resolved.params)
    assert pod["containers"][0]["args"] == [
        "transfer", "basebackup", "--namespace=demo", "--backupsession=bc-1", "--wait-timeout=300",
        "--hostname=host-0", "--pushgateway-url=",
    ]


def test_postgres_pitr_restore_task_passes_the_data_directory_param() -> None:
    task = {"name": "postgres-pitr-restore-16", "params": [{"name": "pgdata", "value": "/srv/pg/restored"}]}
    restore = {"kind": "RestoreSession", "metadata": {"name": "rs", "namespace": "demo"},
               "spec": {"target": {"ref": {"name": "db"}}, "task": task, "pitr": {"targetTime": "2026-01-01T00:00:00Z"}}}
    resolved = resolve_task("restore", task, _binding("postgres"), TASKS)
    pod = build_pod_spec(TASKS[resolved.name], FUNCTIONS, restore_inputs(restore, REPO, None), resolved.params)
    assert pod["containers"][0]["args"] == [
        "transfer", "pitr-restore", "--namespace=demo", "--restoresession=rs", "--pgdata=/srv/pg/restored",
        "--stashplan-command=", "--password-file=", "--recover=true", "--pg-version=16", "--hostname=host-0",
        "--pushgateway-url=",
    ]


def test_the_pitr_tasks_are_refused_in_the_other_direction() -> None:
    with pytest.raises(TaskError, match=r"'postgres-basebackup-15' .* is the built-in backup addon, but it is used for restore"):
        resolve_task("restore", {"name": "postgres-basebackup-15"}, _binding("postgres"), TASKS)
    with pytest.raises(TaskError, match=r"'postgres-pitr-restore-17' .* is the built-in restore addon, but it is used for backup"):
        resolve_task("backup", {"name": "postgres-pitr-restore-17"}, _binding("postgres"), TASKS)
