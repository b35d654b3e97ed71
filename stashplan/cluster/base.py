"""The Cluster interface every adapter implements; objects are plain Kubernetes-shaped dicts.

Rules (the contract suite in tests/contract/ checks them on every adapter):
- Objects are identified by (kind, namespace, name); cluster-scoped kinds use namespace "".
- `create` fills metadata.uid, resourceVersion, generation (1), creationTimestamp, namespace, and
  apiVersion/kind; it raises AlreadyExists. `metadata.generateName` gives a unique name.
- `replace` requires the object to exist (NotFound) and, when the body carries a resourceVersion,
  that it is current (Conflict otherwise). Status in the body is ignored for kinds with a status
  subresource; generation increases when spec changes.
- `apply` is server-side apply (`kubectl apply --server-side`, force off) by `field_manager`: it creates the
  object or sets the fields `obj` carries, and removes those the manager applied before and `obj` no longer has
  (unless another manager owns them too); metadata.managedFields records who owns what. A field another manager
  owns that `obj` would change raises FieldConflict naming field and manager, and nothing is written. A
  resourceVersion in `obj` must be current (Conflict). Status is not applied. Local mode treats every list as
  atomic (an API server merges keyed lists such as containers item by item; the same for objects only one
  manager writes).
- `patch_status` merges into .status only (top-level keys replaced) and bumps resourceVersion. It is conditional:
  with `resource_version`, Conflict unless that is still the object's; always, Conflict when it would move a
  session (BackupSession, RestoreSession) out of a final phase (stashplan.phases) — atomically, on every adapter.
- `delete` raises NotFound; dependants whose ownerReferences name the deleted uid are deleted too
  (background propagation, eventually).
- `list` filters by namespace (None = all) and by equality label selector.
- `watch` yields events after resourceVersion `since` (None = from now), ending after `timeout` s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from stashplan.managed_fields import FIELD_MANAGER


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict


class Cluster(Protocol):
    """Where the actual state lives: the embedded SQLite store or a Kubernetes API server."""

    def list(
        self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[dict]: ...

    def get(self, kind: str, namespace: str, name: str) -> dict: ...

    def create(self, obj: dict) -> dict: ...

    def replace(self, obj: dict) -> dict: ...

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict: ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def patch_status(
        self, kind: str, namespace: str, name: str, status: dict, *, resource_version: str | None = None
    ) -> dict: ...

    def watch(
        self, kinds: Sequence[str], since: str | None = None, timeout: float = 10.0
    ) -> Iterator[WatchEvent]: ...

    def close(self) -> None: ...


def matches_labels(obj: dict, labels: Mapping[str, str] | None) -> bool:
    if not labels:
        return True
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items())
