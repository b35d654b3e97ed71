"""The values desired-state computation works on: the objects by kind (World), its settings, and its result. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stashplan import DEFAULT_IMAGE
from stashplan.desired.reads import namespace_key, repository_key, storage_secret_key, target_key
from stashplan.desired.scope import Scope
from stashplan.desired.stored import StoredObjects
from stashplan.desired.task_params import ParamCheck
from stashplan.desired.usage import repository_denied
from stashplan.kinds import identity


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings that shape what is desired."""

    image: str = DEFAULT_IMAGE
    pushgateway_url: str = ""
    check_params: ParamCheck | None = None  # the providers' allow-lists for task params (set by the CLI)
    # Local mode runs each container's command on this machine: whether a command exists here (None: a cluster).
    command_available: Callable[[str], bool] | None = field(default=None, compare=False)
    # Beside another Stash operator: act only on opted-in objects (stashplan.desired.scope).
    scope: Scope = Scope.ALL
    # kube mode: session pods run as Jobs of a Kubernetes cluster (a point-in-time restore must then name a claim).
    cluster: bool = False


@dataclass(frozen=True, slots=True)
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


class WantedObjects(list[dict]):
    """Desired objects as they are added: only the first of each identity (two configurations may want the same
    binding), and only those `settled` does not accept (a plan passes "already exists as wanted", so a large
    no-change plan never holds a second copy of every CronJob). `identities` holds every identity added."""

    def __init__(self, settled: Callable[[dict], bool] | None = None) -> None:
        super().__init__()
        self.settled = settled
        self.identities: set[tuple[str, str, str]] = set()

    def append(self, obj: dict) -> None:
        key = identity(obj)
        if key in self.identities:
            return
        self.identities.add(key)
        if self.settled is None or not self.settled(obj):
            super().append(obj)

    def extend(self, objs: Iterable[dict]) -> None:
        for obj in objs:
            self.append(obj)

    def __iadd__(self, objs: Iterable[dict]) -> WantedObjects:  # type: ignore[override,misc]
        self.extend(objs)
        return self


class WantedStatuses(list[StatusChange]):
    """Status changes as they are added, without those `settled` accepts (a plan passes "already so")."""

    def __init__(self, settled: Callable[[StatusChange], bool] | None = None) -> None:
        super().__init__()
        self.settled = settled

    def append(self, change: StatusChange) -> None:
        if self.settled is None or not self.settled(change):
            super().append(change)


@dataclass
class Desired:
    """What should exist: managed objects (CronJobs, Jobs), status changes, deletions, notes for users, and
    refusals (what the manifests ask for that stashplan cannot run: `plan` exits 1)."""

    objects: list[dict] = field(default_factory=list)
    identities: set[tuple[str, str, str]] = field(default_factory=set)  # of every object wanted, settled or not
    statuses: list[StatusChange] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


class World:
    """Objects by kind and identity, for lookups while computing desired state."""

    def __init__(self, objects: Mapping[str, Sequence[dict]], addons: list[dict] | None = None,
                 secrets_known: bool = True) -> None:
        # False when Secrets were not read (kube mode: the operator holds no Secret permission).
        self.secrets_known = secrets_known
        self.by_kind: dict[str, Sequence[dict]] = {k: v if isinstance(v, StoredObjects) else list(v)
                                                   for k, v in objects.items()}
        self._stored = {k: v for k, v in self.by_kind.items() if isinstance(v, StoredObjects)}
        self._index = {identity(o): o for objs in self.by_kind.values() if not isinstance(objs, StoredObjects)
                       for o in objs}
        self.tasks = {o["metadata"]["name"]: o for o in addons or [] if o.get("kind") == "Task"}
        self.functions = {o["metadata"]["name"]: o for o in addons or [] if o.get("kind") == "Function"}
        self.tasks.update({o["metadata"]["name"]: o for o in self.by_kind.get("Task", [])})
        self.functions.update({o["metadata"]["name"]: o for o in self.by_kind.get("Function", [])})

    def all(self, kind: str) -> Sequence[dict]:
        return self.by_kind.get(kind, [])

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        found = self._index.get((kind, namespace, name))
        if found is None and (stored := self._stored.get(kind)) is not None:
            return stored.get((kind, namespace, name))
        return found


def repository_of(world: World, obj: dict) -> tuple[dict | None, str]:
    key = repository_key(obj)
    return world.get(*key), f"{key[1]}/{key[2]}"


def storage_secret_of(world: World, repo: dict, user_ns: str) -> tuple[dict | None, str]:
    key = storage_secret_key(repo, user_ns)
    return world.get(*key), f"{key[1]}/{key[2]}"


def repository_denied_for(world: World, repo: dict | None, user_ns: str) -> str | None:
    if repo is None:
        return None
    ns_obj = world.get(*namespace_key(user_ns))
    labels = {"kubernetes.io/metadata.name": user_ns, **((ns_obj or {}).get("metadata", {}).get("labels") or {})}
    return repository_denied(repo, user_ns, labels)


def target_of(world: World, obj: dict) -> tuple[dict | None, str]:
    key = target_key(obj)
    return world.get(*key), f"{key[0]} {key[1]}/{key[2]}"
