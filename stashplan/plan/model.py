"""The Plan value: ordered actions with before/after and field diffs. Pure data.

A Plan is plain data. `changes` hold everything apply will do, in order; `notes`, `warnings` and each
change's `reason` exist only for display and have no authority over apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    STATUS = "status"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-", "status": "~"}[self.value]


def address(kind: str, namespace: str, name: str) -> str:
    """How a plan names an object: Kind/namespace/name (Kind/name when cluster-scoped)."""
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


@dataclass(frozen=True, slots=True)
class FieldDiff:
    path: str  # dotted path, list indexes in brackets: spec.schedule, spec.steps[0].name
    before: Any  # None when added
    after: Any  # None when removed
    op: str  # "add" | "remove" | "change"


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    kind: str
    namespace: str
    name: str
    after: dict | None  # the full object to write (create/update/replace) or the status keys to set
    before: dict | None = None  # the managed projection of what exists (display + staleness only)
    diff: tuple[FieldDiff, ...] = ()
    reason: str = ""  # why, for users only
    resource_version: str | None = None  # of the object read; None when it did not exist

    @property
    def address(self) -> str:
        return address(self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Orphan:
    """An object stashplan applied earlier that the manifests no longer hold; `plan --prune` destroys it."""

    kind: str
    namespace: str
    name: str
    reason: str

    @property
    def address(self) -> str:
        return address(self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    created: str = ""
    sources: tuple[str, ...] = ()
    orphans: tuple[Orphan, ...] = ()  # listed only, never acted on (with --prune they are DELETE changes instead)
    refusals: tuple[str, ...] = ()  # what the manifests ask for that stashplan cannot run: plan exits 1

    def counts(self) -> dict[str, int]:
        out = {"add": 0, "change": 0, "destroy": 0, "status": 0}
        for c in self.changes:
            if c.action is Action.CREATE:
                out["add"] += 1
            elif c.action is Action.UPDATE:
                out["change"] += 1
            elif c.action is Action.DELETE:
                out["destroy"] += 1
            else:
                out["status"] += 1
        return out

    @property
    def empty(self) -> bool:
        """Nothing for apply to do."""
        return not self.changes

    @property
    def settled(self) -> bool:
        """Nothing to do and nothing orphaned: what `--detailed-exitcode` exits 0 for."""
        return not self.changes and not self.orphans
