"""Which Task runs: exact names, Stash's versioned names, AppBinding fallbacks, and the params merge."""

from __future__ import annotations

import re

import pytest

from stashplan.api import builtin_addons
from stashplan.desired.tasks import ClientTooOldError, TaskError, resolve_task

BUILTIN = {o["metadata"]["name"]: o for o in builtin_addons() if o["kind"] == "Task"}


def _binding(app_type: str | None = None, addon: dict | None = None) -> dict:
    spec: dict = {}
    if app_type:
        spec["type"] = app_type
    if addon is not None:
        spec["parameters"] = {"stash": {"addon": addon}}
    return {"kind": "AppBinding", "metadata": {"name": "db", "namespace": "demo"}, "spec": spec}


@pytest.mark.parametrize(
    ("name", "direction", "expected"),
    [
        ("postgres-backup-11.9", "backup", "postgres-backup-15"),
        ("postgres-backup-10.14.0-v4", "backup", "postgres-backup-15"),
        ("postgres-restore-10.14.0-v4", "restore", "postgres-restore-15"),
        ("postgresql-backup-16", "backup", "postgres-backup-16"),
        ("postgres-backup-16.1-v4", "backup", "postgres-backup-16"),
        ("postgres-restore-17.2-v2", "restore", "postgres-restore-17"),
        ("postgres-restore-18.1", "restore", "postgres-restore-17"),  # psql 17 restores into a newer server
        ("postgres-backup", "backup", "postgres-backup-17"),
        ("mysql-backup-8.0.21", "backup", "mysql-backup-8.0"),
        ("mysql-restore-5.7.25-v8", "restore", "mysql-restore-8.0"),
        ("mariadb-backup-10.5.8", "backup", "mariadb-backup-10.11"),
        ("redis-backup-6.2.5", "backup", "redis-backup-7"),
        ("sqlite-restore-3.40", "restore", "sqlite-restore-3"),
        ("redis-backup", "backup", "redis-backup-7"),
    ],
)
def test_stash_versioned_names_resolve_to_the_builtin_addon(name: str, direction: str, expected: str) -> None:
    resolved = resolve_task(direction, {"name": name}, None, BUILTIN)  # type: ignore[arg-type]
    assert resolved.name == expected
    assert resolved.note == f"spec.task.name names {name} (no Task of that exact name): using built-in addon {expected}"


def test_a_task_of_the_exact_name_wins_over_the_builtin() -> None:
    custom = {"kind": "Task", "metadata": {"name": "postgres-backup-11.9"}, "spec": {"steps": [{"name": "x"}]}}
    resolved = resolve_task("backup", {"name": "postgres-backup-11.9"}, None, {**BUILTIN, "postgres-backup-11.9": custom})
    assert resolved.name == "postgres-backup-11.9"
    assert resolved.note == "spec.task.name names Task postgres-backup-11.9"
    assert resolved.database == ""


def test_builtin_name_itself_is_reported_as_builtin() -> None:
    resolved = resolve_task("restore", {"name": "mysql-restore-8.0"}, None, BUILTIN)
    assert (resolved.name, resolved.database) == ("mysql-restore-8.0", "mysql")
    assert resolved.note == "spec.task.name names built-in addon mysql-restore-8.0"


def test_unsupported_database_lists_the_supported_ones() -> None:
    with pytest.raises(TaskError) as info:
        resolve_task("backup", {"name": "mongodb-backup-4.4.6"}, None, BUILTIN)
    assert str(info.value) == (
        "Task 'mongodb-backup-4.4.6' (spec.task.name): database 'mongodb' has no built-in addon; "
        "supported: postgres, mysql, mariadb, redis, sqlite"
    )


def test_wrong_direction_and_unknown_names_are_errors() -> None:
    with pytest.raises(TaskError, match="is a restore task, but it is used for backup"):
        resolve_task("backup", {"name": "postgres-restore-11.9"}, None, BUILTIN)
    with pytest.raises(TaskError, match=re.escape("Task 'my-custom-task' (spec.task.name) not found")):
        resolve_task("backup", {"name": "my-custom-task"}, None, BUILTIN)


def test_a_builtin_of_the_other_direction_is_refused() -> None:
    with pytest.raises(TaskError) as info:
        resolve_task("backup", {"name": "postgres-restore-15"}, None, BUILTIN)
    assert str(info.value) == (
        "Task 'postgres-restore-15' (spec.task.name) is the built-in restore addon, but it is used for backup"
    )


def test_builtins_must_be_passed_in() -> None:
    with pytest.raises(TaskError, match="the built-in Task postgres-backup-15 is not loaded"):
        resolve_task("backup", {"name": "postgres-backup-11.9"}, None, {})


def test_omitted_name_uses_the_appbinding_addon_task_and_its_params() -> None:
    binding = _binding(
        "kubedb.com/mysql",
        {"backupTask": {"name": "mysql-backup-8.0.21", "params": [{"name": "args", "value": "--databases app"}]},
         "restoreTask": {"name": "mysql-restore-8.0.21"}},
    )
    backup = resolve_task("backup", {}, binding, BUILTIN)
    assert backup.name == "mysql-backup-8.0"
    assert backup.params == {"args": "--databases app"}
    assert backup.note == (
        "AppBinding demo/db spec.parameters.stash.addon.backupTask.name names mysql-backup-8.0.21 "
        "(no Task of that exact name): using built-in addon mysql-backup-8.0"
    )
    restore = resolve_task("restore", None, binding, BUILTIN)
    assert restore.name == "mysql-restore-8.0"
    assert restore.params == {}  # backup params never leak into restore (Stash's ExtractAddonInfo slip)


@pytest.mark.parametrize(
    ("app_type", "expected"),
    [
        ("kubedb.com/postgres", "postgres-backup-17"),
        ("kubedb.com/mysql", "mysql-backup-8.0"),
        ("kubedb.com/mariadb", "mariadb-backup-10.11"),
        ("kubedb.com/redis", "redis-backup-7"),
        ("sqlite", "sqlite-backup-3"),
        ("stashplan.dev/sqlite", "sqlite-backup-3"),
        ("PostgreSQL", "postgres-backup-17"),
    ],
)
def test_omitted_name_falls_back_to_the_appbinding_type(app_type: str, expected: str) -> None:
    resolved = resolve_task("backup", {"params": [{"name": "args", "value": "-x"}]}, _binding(app_type), BUILTIN)
    assert resolved.name == expected
    assert resolved.params == {"args": "-x"}
    assert resolved.note == (
        f"spec.task.name is empty; AppBinding demo/db has type {app_type}: using built-in addon {expected}"
    )


def test_appbinding_without_addon_or_type_and_unknown_type_are_errors() -> None:
    with pytest.raises(TaskError, match=re.escape("has neither spec.parameters.stash.addon.backupTask nor spec.type")):
        resolve_task("backup", None, _binding(), BUILTIN)
    with pytest.raises(TaskError, match=re.escape("has type 'kubedb.com/mongodb', which has no built-in addon; supported: ")):
        resolve_task("backup", None, _binding("kubedb.com/mongodb"), BUILTIN)
    with pytest.raises(TaskError, match=re.escape("spec.task.name is empty and the target is not an AppBinding")):
        resolve_task("restore", None, None, BUILTIN)


def test_invoker_params_override_appbinding_params() -> None:
    binding = _binding(
        "kubedb.com/postgres",
        {"backupTask": {"name": "", "params": [{"name": "args", "value": "--a"}, {"name": "user", "value": "u"}]}},
    )
    resolved = resolve_task("backup", {"params": [{"name": "args", "value": "--b"}]}, binding, BUILTIN)
    assert resolved.name == "postgres-backup-17"
    assert resolved.params == {"args": "--b", "user": "u"}


def _versioned(app_type: str, version: str) -> dict:
    binding = _binding(app_type)
    binding["spec"]["version"] = version
    return binding


@pytest.mark.parametrize(
    ("version", "expected"),
    [("16.1", "postgres-backup-16"), ("15.4", "postgres-backup-15"), ("11.9", "postgres-backup-15"),
     ("17.2-bookworm", "postgres-backup-17"), ("latest", "postgres-backup-17")],
)
def test_the_appbinding_version_picks_the_postgres_addon_version(version: str, expected: str) -> None:
    resolved = resolve_task("backup", None, _versioned("kubedb.com/postgres", version), BUILTIN)
    assert resolved.name == expected
    assert resolved.note == (f"spec.task.name is empty; AppBinding demo/db has type kubedb.com/postgres, "
                             f"version {version}: using built-in addon {expected}")


NEWER = ("AppBinding demo/db spec.version is PostgreSQL 18.1, newer than the newest PostgreSQL client of the "
         "built-in addons (pg_dump 17, postgres-backup-17): pg_dump dumps servers up to its own major version")


@pytest.mark.parametrize("task_ref", [None, {"name": "postgres-backup-15"}, {"name": "postgres-backup-11.9"}])
def test_a_backup_of_a_server_newer_than_the_newest_client_is_refused(task_ref: dict | None) -> None:
    with pytest.raises(ClientTooOldError) as info:
        resolve_task("backup", task_ref, _versioned("kubedb.com/postgres", "18.1"), BUILTIN)
    assert str(info.value) == NEWER


def test_a_task_named_for_a_newer_server_is_refused_for_backup_but_not_for_restore() -> None:
    with pytest.raises(ClientTooOldError) as info:
        resolve_task("backup", {"name": "postgres-backup-18.0-v1"}, None, BUILTIN)
    assert str(info.value).startswith("Task 'postgres-backup-18.0-v1' (spec.task.name) is for PostgreSQL 18.0-v1, "
                                      "newer than the newest PostgreSQL client of the built-in addons (pg_dump 17")
    restore = resolve_task("restore", None, _versioned("kubedb.com/postgres", "18.1"), BUILTIN)
    assert restore.name == "postgres-restore-17"  # psql 17 restores a dump of pg_dump <= 17 into 18


def test_a_custom_task_and_other_databases_are_not_bound_by_the_postgres_client() -> None:
    custom = {"kind": "Task", "metadata": {"name": "pg18-backup"}, "spec": {"steps": [{"name": "x"}]}}
    tasks = {**BUILTIN, "pg18-backup": custom}
    resolved = resolve_task("backup", {"name": "pg18-backup"}, _versioned("kubedb.com/postgres", "18.1"), tasks)
    assert resolved.name == "pg18-backup"  # its own image may carry pg_dump 18
    assert resolve_task("backup", None, _versioned("kubedb.com/mysql", "9.1"), BUILTIN).name == "mysql-backup-8.0"
    assert resolve_task("backup", None, _versioned("mariadb", "10.5.8"), BUILTIN).name == "mariadb-backup-10.11"
