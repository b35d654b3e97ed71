"""What desired state reads, declared once. A unit is a BackupConfiguration or a RestoreSession; its desired
state is computed from the objects named here (its Repository and that Repository's Secret, its target, the
Namespace a Selector usage policy looks at, its CronJob or Job, its sessions and their Jobs) plus every Task and
Function and the pods' identity objects of its namespace. The desired-state computation looks its
objects up through these functions, and the loop's incremental scope (operator/incremental.py) is derived from
`unit_reads` and `unit_of`, so an incremental plan reads what a full plan reads. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stashplan.desired.pods import cronjob_name, job_name, receiver_name
from stashplan.kinds import INVOKER_NAME

Key = tuple[str, str, str]  # (kind, namespace, name); "" namespace for cluster-scoped kinds
Unit = Key  # ("BackupConfiguration" | "RestoreSession", namespace, name)
UNIT_KINDS = ("BackupConfiguration", "RestoreSession")
# Read whole by every unit (the addons are merged in): a change to one may change any unit's plan.
READ_WHOLE = ("Task", "Function")
# Read in the unit's own namespace: the pods' identity.
READ_PER_NAMESPACE = ("ServiceAccount", "Role", "RoleBinding")
RESTORE_LABEL = "stash.appscode.com/restore-session"
# What a unit makes and tracks as its own (a BackupConfiguration's CronJob and WAL receiver, sessions' Jobs).
MEMBER_KINDS = ("CronJob", "Job", "Deployment")


def repository_key(obj: dict) -> Key:
    """The Repository a BackupConfiguration or RestoreSession names (in its own namespace unless it says)."""
    ref = obj["spec"].get("repository") or {}
    return ("Repository", ref.get("namespace") or obj["metadata"]["namespace"], ref.get("name", ""))


def storage_secret_key(repo: dict, user_namespace: str) -> Key:
    """The Secret holding a Repository's storage credentials and password, as the pods of `user_namespace` get it:
    of that namespace (a pod receives only its own namespace's Secrets), also for a Repository of another
    namespace that its usagePolicy shares."""
    return ("Secret", user_namespace, (repo["spec"].get("backend") or {}).get("storageSecretName", ""))


def target_key(obj: dict) -> Key:
    """The target (an AppBinding unless the ref says otherwise) of a BackupConfiguration or RestoreSession."""
    ref = (obj["spec"].get("target") or {}).get("ref") or {}
    return (ref.get("kind", "AppBinding"), ref.get("namespace") or obj["metadata"]["namespace"], ref.get("name", ""))


def uses_namespace_labels(repo: dict) -> bool:
    """Whether the Repository's usage policy decides by the labels of the user's Namespace (`from: Selector`)."""
    policy = ((repo.get("spec") or {}).get("usagePolicy") or {}).get("allowedNamespaces") or {}
    return policy.get("from") == "Selector"


def reads_namespaces(repositories: Iterable[dict]) -> bool:
    """Whether a plan over these Repositories reads Namespace objects (only a Selector policy needs them)."""
    return any(uses_namespace_labels(r) for r in repositories)


def namespace_key(name: str) -> Key:
    return ("Namespace", "", name)


def cronjob_key(config: dict) -> Key:
    meta = config["metadata"]
    return ("CronJob", meta["namespace"], cronjob_name(meta["name"], target_key(config)[1], meta["namespace"]))


def job_key(session_kind: str, namespace: str, session_name: str) -> Key:
    return ("Job", namespace, job_name(session_kind, session_name))


def unit_reads(unit: Unit, obj: dict, lookup: Callable[[str, str, str], dict | None]) -> tuple[set[Key], set[str]]:
    """(the objects the unit's desired state reads by name, the namespaces whose identity objects it reads).
    `lookup` finds an object by key (the Repository, to follow it to its Secret and policy)."""
    kind, ns, name = unit
    keys = {unit, repository_key(obj), target_key(obj)}
    namespaces = {ns}  # no RoleBinding is made outside the unit's namespace
    repo = lookup(*repository_key(obj))
    if repo is not None:
        keys.add(storage_secret_key(repo, ns))
        if uses_namespace_labels(repo):
            keys.add(namespace_key(ns))
    if kind == "BackupConfiguration":
        keys.add(cronjob_key(obj))
        keys.add(("Deployment", ns, receiver_name(name)))  # its WAL receiver (walArchive receive), if any
    else:
        keys.add(job_key("RestoreSession", ns, name))
    return keys, namespaces


def unit_of(key: Key, obj: dict | None) -> Unit | None:
    """The unit an object belongs to (None: none): a session to its invoker, a CronJob or Job to the
    configuration or restore whose label it carries."""
    kind, ns, name = key
    if kind in UNIT_KINDS:
        return (kind, ns, name)
    if obj is None:
        return None
    labels = obj["metadata"].get("labels") or {}
    if kind == "BackupSession":
        return ("BackupConfiguration", ns, (obj.get("spec", {}).get("invoker") or {}).get("name", ""))
    if kind in MEMBER_KINDS and INVOKER_NAME in labels:
        return ("BackupConfiguration", ns, labels[INVOKER_NAME])
    if kind == "Job" and RESTORE_LABEL in labels:
        return ("RestoreSession", ns, labels[RESTORE_LABEL])
    return None
