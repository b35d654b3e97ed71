"""The values desired-state computation works on: the objects by kind (World), its settings, and its result. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from stashplan.kinds import identity
from stashplan.reconcile.task_params import ParamCheck
from stashplan.reconcile.usage import repository_denied

TERMINAL = frozenset({"Succeeded", "Failed", "Skipped"})


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings that shape what is desired."""

    image: str = "stashplan:latest"
    pushgateway_url: str = ""
    check_params: ParamCheck | None = None  # the providers' allow-lists for task params (set by the CLI)
    # Local mode runs each container's command on this machine: whether a command exists here (None: a cluster).
    command_available: Callable[[str], bool] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StatusChange:
    kind: str
    namespace: str
    name: str
    status: dict  # top-level status keys to set
    reason: str = ""


@dataclass(frozen=True)
class Deletion:
    kind: str
    namespace: str
    name: str
    reason: str


@dataclass
class Desired:
    """What should exist: managed objects (CronJobs, Jobs), status changes, deletions, notes for users, and
    refusals (what the manifests ask for that stashplan cannot run: `plan` exits 1)."""

    objects: list[dict] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


class World:
    """Objects by kind and identity, for lookups while computing desired state."""

    def __init__(self, objects: Mapping[str, list[dict]], addons: list[dict] | None = None) -> None:
        self.by_kind = {k: list(v) for k, v in objects.items()}
        self._index = {identity(o): o for objs in self.by_kind.values() for o in objs}
        self.tasks = {o["metadata"]["name"]: o for o in addons or [] if o.get("kind") == "Task"}
        self.functions = {o["metadata"]["name"]: o for o in addons or [] if o.get("kind") == "Function"}
        self.tasks.update({o["metadata"]["name"]: o for o in self.by_kind.get("Task", [])})
        self.functions.update({o["metadata"]["name"]: o for o in self.by_kind.get("Function", [])})

    def all(self, kind: str) -> list[dict]:
        return self.by_kind.get(kind, [])

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return self._index.get((kind, namespace, name))


def repository_of(world: World, obj: dict) -> tuple[dict | None, str]:
    ref = obj["spec"].get("repository") or {}
    ns = ref.get("namespace") or obj["metadata"]["namespace"]
    return world.get("Repository", ns, ref.get("name", "")), f"{ns}/{ref.get('name', '')}"


def repository_denied_for(world: World, repo: dict | None, user_ns: str) -> str | None:
    if repo is None:
        return None
    ns_obj = world.get("Namespace", "", user_ns)
    labels = {"kubernetes.io/metadata.name": user_ns, **((ns_obj or {}).get("metadata", {}).get("labels") or {})}
    return repository_denied(repo, user_ns, labels)


def target_of(world: World, obj: dict) -> tuple[dict | None, str]:
    ref = (obj["spec"].get("target") or {}).get("ref") or {}
    ns = ref.get("namespace") or obj["metadata"]["namespace"]
    return world.get(ref.get("kind", "AppBinding"), ns, ref.get("name", "")), f"{ref.get('kind', 'AppBinding')} {ns}/{ref.get('name', '')}"
