"""Task/Function resolution as Stash does it: envsubst, which Task (and built-in addon) to use, the variables
Stash provides, and the Job PodSpec built from a Task's Functions. Pure: dicts in, dicts out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stashplan.api.inputs import backup_inputs, restore_inputs
from stashplan.desired.envsubst import envsubst, substitute
from stashplan.desired.pods import priority_env
from stashplan.errors import StashplanError

__all__ = [
    "ADDON_VERSIONS",
    "BUILTIN_ADDONS",
    "ClientTooOldError",
    "NoAddonError",
    "ResolvedTask",
    "TaskError",
    "backup_inputs",
    "build_pod_spec",
    "envsubst",
    "resolve_task",
    "restore_inputs",
    "substitute",
]

Direction = Literal["backup", "restore"]

# database -> versions of its built-in addon, oldest first: Tasks/Functions `<db>-backup-<v>`, `<db>-restore-<v>`.
# Every version's Function runs the same image; PostgreSQL's versions name the servers their client dumps
# (pg_dump N dumps servers up to N), so the newest is the image's pg_dump (.ci/image.sh: trixie, 17).
ADDON_VERSIONS: dict[str, tuple[str, ...]] = {
    "postgres": ("15", "16", "17"),
    "mysql": ("8.0",),
    "mariadb": ("10.11",),
    "redis": ("7",),
    "sqlite": ("3",),
}
# database -> the version chosen when nothing names one: the newest.
BUILTIN_ADDONS: dict[str, str] = {db: versions[-1] for db, versions in ADDON_VERSIONS.items()}
# Databases whose dump client refuses a server newer than itself -> (what the server is, the client's name).
CLIENT_BOUND: dict[str, tuple[str, str]] = {"postgres": ("PostgreSQL", "pg_dump")}
# Other spellings of a database (in Task names and AppBinding types) -> the built-in addon's database.
DATABASE_ALIASES: dict[str, str] = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "pg": "postgres",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "redis": "redis",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
}


# Built-in Tasks of one direction only that `_VERSIONED` does not describe (PostgreSQL point-in-time recovery).
ONE_WAY: dict[str, tuple[str, ...]] = {"backup": ("postgres-basebackup-",), "restore": ("postgres-pitr-restore-",)}


class TaskError(StashplanError):
    """The Task or one of its Functions cannot be resolved; the message names the Task (and step)."""


class NoAddonError(TaskError):
    """The Task names a database stashplan has no addon for (MongoDB, Elasticsearch...): refused at plan time."""


class ClientTooOldError(TaskError):
    """A backup of a server newer than the newest client of the built-in addons (pg_dump 17 refuses PostgreSQL
    18): refused at plan time, naming the server's version and the client's."""


# --- which Task ---------------------------------------------------------------------------------------

_VERSIONED = re.compile(r"^(?P<db>[a-z0-9]+)-(?P<direction>backup|restore)(?:-(?P<version>.+))?$")


@dataclass(frozen=True)
class ResolvedTask:
    """The Task to run and why. `params` = AppBinding addon params overlaid by the invoker's task.params
    (the Task step params are applied under them by build_pod_spec)."""

    name: str
    params: dict[str, str] = field(default_factory=dict)
    note: str = ""
    database: str = ""  # the built-in addon's database when one was chosen


def builtin_task_name(database: str, direction: Direction, version: str = "") -> str:
    return f"{database}-{direction}-{version or BUILTIN_ADDONS[database]}"


def _builtin_names(direction: Direction) -> dict[str, str]:
    """Every built-in addon Task name of `direction` -> its database."""
    return {builtin_task_name(db, direction, v): db for db, versions in ADDON_VERSIONS.items() for v in versions}


def _numbers(version: str) -> tuple[int, ...]:
    """`16.1` -> (16, 1), `10.14.0-v4` -> (10, 14, 0), `v17` -> (17,); () when it starts with no number."""
    found = re.match(r"^v?(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(n) for n in found[1].split(".")) if found else ()


def addon_version(database: str, wanted: str) -> str | None:
    """The built-in addon version for a server (or Stash Task) version: the first addon version not older than
    it, compared to the addon's precision (MariaDB 10.5.8 -> 10.11, PostgreSQL 16.1 -> 16, 11.9 -> 15); the
    newest when `wanted` names no version; None when it is newer than every addon version."""
    numbers = _numbers(wanted)
    if not numbers:
        return BUILTIN_ADDONS[database]
    for version in ADDON_VERSIONS[database]:
        mine = _numbers(version)
        if numbers[: len(mine)] <= mine:
            return version
    return None


def _too_new(database: str, version: str, who: str) -> ClientTooOldError:
    server, client = CLIENT_BOUND[database]
    newest = BUILTIN_ADDONS[database]
    return ClientTooOldError(
        f"{who} {server} {version}, newer than the newest {server} client of the built-in addons "
        f"({client} {newest}, {builtin_task_name(database, 'backup')}): {client} dumps servers up to its own "
        "major version"
    )


def _params(items: Any) -> dict[str, str]:
    return {str(p["name"]): str(p.get("value", "")) for p in items or [] if isinstance(p, dict) and p.get("name")}


def _supported() -> str:
    return ", ".join(BUILTIN_ADDONS)


def _builtin(database: str, direction: Direction, tasks: Mapping[str, dict], why: str,
             wanted: str = "", who: str = "") -> ResolvedTask:
    """The built-in addon of `database` for version `wanted`. Newer than every addon version: a backup of a
    client-bound database (PostgreSQL) is refused; anything else takes the newest (psql 17 restores into 18)."""
    version = addon_version(database, wanted)
    if version is None:
        if direction == "backup" and database in CLIENT_BOUND:
            raise _too_new(database, wanted, who)
        version = BUILTIN_ADDONS[database]
    name = builtin_task_name(database, direction, version)
    if name not in tasks:
        raise TaskError(f"{why}, but the built-in Task {name} is not loaded (were the built-in addons passed?)")
    return ResolvedTask(name=name, note=f"{why}: using built-in addon {name}", database=database)


def _by_name(name: str, direction: Direction, tasks: Mapping[str, dict], origin: str) -> ResolvedTask:
    """Resolve a Task name: an exact Task wins; a Stash versioned name maps to its database's built-in of the
    nearest version (`postgres-backup-16.1` -> postgres-backup-16)."""
    other: Direction = "restore" if direction == "backup" else "backup"
    if name in _builtin_names(other) or name.startswith(ONE_WAY[other]):
        raise TaskError(f"Task {name!r} ({origin}) is the built-in {other} addon, but it is used for {direction}")
    if name in tasks:
        database = _builtin_names(direction).get(name, "")
        what = "built-in addon" if database else "Task"
        return ResolvedTask(name=name, note=f"{origin} names {what} {name}", database=database)
    match = _VERSIONED.match(name)
    if match is None:
        raise TaskError(f"Task {name!r} ({origin}) not found; built-in addons: {_supported()}")
    if match["direction"] != direction:
        raise TaskError(f"Task {name!r} ({origin}) is a {match['direction']} task, but it is used for {direction}")
    found = DATABASE_ALIASES.get(match["db"])
    if found is None:
        raise NoAddonError(
            f"Task {name!r} ({origin}): database {match['db']!r} has no built-in addon; supported: {_supported()}"
        )
    return _builtin(found, direction, tasks, f"{origin} names {name} (no Task of that exact name)",
                    match["version"] or "", f"Task {name!r} ({origin}) is for")


def _appbinding_label(appbinding: dict) -> str:
    meta = appbinding.get("metadata") or {}
    return f"AppBinding {meta.get('namespace') or 'default'}/{meta.get('name', '?')}"


def database_of_type(app_type: str) -> str | None:
    """`kubedb.com/postgres`, `postgresql`, `stashplan.dev/sqlite`... -> the built-in addon's database."""
    last = app_type.strip().lower().rsplit("/", 1)[-1]
    return DATABASE_ALIASES.get(last)


def resolve_task(
    direction: Direction,
    task_ref: dict | None,
    appbinding: dict | None,
    tasks: Mapping[str, dict],
) -> ResolvedTask:
    """Choose the Task for a backup or restore, as Stash does, and merge its params.

    1. `task_ref.name` (BackupConfiguration/RestoreSession `spec.task`): a Task of exactly that name wins;
       otherwise a Stash versioned name (`postgres-backup-11.9`, `postgres-backup-10.14.0-v4`) resolves to
       the built-in addon of its database.
    2. No name: the AppBinding's `spec.parameters.stash.addon.<backupTask|restoreTask>.name` (same rules),
       else the database named by its `spec.type` (`kubedb.com/postgres`, `sqlite`...), in the addon version
       for its `spec.version` (see addon_version).
    A backup by a built-in addon of an AppBinding whose `spec.version` is newer than the newest client of a
    client-bound database (PostgreSQL 18 > pg_dump 17) raises ClientTooOldError.
    Params: AppBinding addon params < `task_ref.params`. `tasks` must include the built-in addon Tasks."""
    ref = task_ref or {}
    spec = (appbinding or {}).get("spec") or {}
    stash_params = spec.get("parameters") if isinstance(spec.get("parameters"), dict) else {}
    addon = ((stash_params or {}).get("stash") or {}).get("addon") or {}
    addon_task = addon.get(f"{direction}Task") or {}
    params = {**_params(addon_task.get("params")), **_params(ref.get("params"))}
    if ref.get("name"):
        resolved = _by_name(str(ref["name"]), direction, tasks, "spec.task.name")
    elif appbinding is None:
        raise TaskError(f"no {direction} Task: spec.task.name is empty and the target is not an AppBinding")
    elif addon_task.get("name"):
        where = f"{_appbinding_label(appbinding)} spec.parameters.stash.addon.{direction}Task.name"
        resolved = _by_name(str(addon_task["name"]), direction, tasks, where)
    elif spec.get("type"):
        database = database_of_type(str(spec["type"]))
        if database is None:
            raise NoAddonError(
                f"no {direction} Task: spec.task.name is empty and {_appbinding_label(appbinding)} has type "
                f"{spec['type']!r}, which has no built-in addon; supported: {_supported()}"
            )
        why = f"spec.task.name is empty; {_appbinding_label(appbinding)} has type {spec['type']}"
        version = str(spec.get("version") or "")
        if version:
            why += f", version {version}"
        resolved = _builtin(database, direction, tasks, why, version,
                            f"{_appbinding_label(appbinding)} spec.version is")
    else:
        raise TaskError(
            f"no {direction} Task: spec.task.name is empty and {_appbinding_label(appbinding)} has neither "
            f"spec.parameters.stash.addon.{direction}Task nor spec.type"
        )
    version = str(spec.get("version") or "")
    if (appbinding is not None and direction == "backup" and resolved.database in CLIENT_BOUND and version
            and addon_version(resolved.database, version) is None):
        # A built-in addon runs the image's client, whatever version its name says: the newest bounds them all.
        raise _too_new(resolved.database, version, f"{_appbinding_label(appbinding)} spec.version is")
    return ResolvedTask(name=resolved.name, params=params, note=resolved.note, database=resolved.database)


# --- PodSpec ------------------------------------------------------------------------------------------

_CONTAINER_FIELDS = ("image", "command", "args", "workingDir", "ports", "volumeMounts", "volumeDevices")
_RUNTIME_FIELDS = (
    "env",
    "envFrom",
    "resources",
    "livenessProbe",
    "readinessProbe",
    "lifecycle",
    "securityContext",
)


def _container(function: dict, index: int) -> dict[str, Any]:
    name = str(function["metadata"]["name"])
    spec = function.get("spec") or {}
    container: dict[str, Any] = {"name": f"{name.replace('.', '-')}-{index}"}
    for key in _CONTAINER_FIELDS:
        if spec.get(key) not in (None, [], ""):
            container[key] = spec[key]
    runtime = spec.get("runtimeSettings") or {}
    for key in _RUNTIME_FIELDS:
        if runtime.get(key) not in (None, [], {}):
            container[key] = runtime[key]
    if runtime.get("nice") or runtime.get("ionice"):  # as NICE_ADJUSTMENT / IONICE_* before the Function's env
        container["env"] = [*priority_env(runtime), *(container.get("env") or [])]
    container["imagePullPolicy"] = "IfNotPresent"
    return container


def build_pod_spec(
    task: dict,
    functions: Mapping[str, dict],
    inputs: Mapping[str, str],
    params: Mapping[str, str],
) -> dict[str, Any]:
    """The Job's PodSpec for `task`, as Stash's resolver builds it.

    The Task is substituted with the inputs; for each step i its Function is substituted with
    step params < `params` (AppBinding + invoker task.params) < `inputs` (Stash's own variables win, as in
    Stash) and becomes container `<function name, '.' -> '-'>-<i>`. All but the last step are
    initContainers, the last is the container; `restartPolicy: Never`; volumes from the Task.
    Empty initContainers/volumes are omitted (as the API server would)."""
    task_name = str((task.get("metadata") or {}).get("name", "?"))
    resolved_task = substitute(task, {**params, **inputs})
    steps = (resolved_task.get("spec") or {}).get("steps") or []
    if not steps:
        raise TaskError(f"Task {task_name} has no steps")
    containers: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        fn_name = str(step.get("name", ""))
        function = functions.get(fn_name)
        if function is None:
            raise TaskError(f"Task {task_name} step {index} ({fn_name}): Function {fn_name!r} not found")
        variables = {**_params(step.get("params")), **params, **inputs}
        containers.append(_container(substitute(function, variables), index))
    pod: dict[str, Any] = {"restartPolicy": "Never"}
    if len(containers) > 1:
        pod["initContainers"] = containers[:-1]
    pod["containers"] = containers[-1:]
    volumes = (resolved_task.get("spec") or {}).get("volumes") or []
    if volumes:
        pod["volumes"] = volumes
    return pod
