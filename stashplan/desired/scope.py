"""Which Stash objects are stashplan's to act on (`--scope all|opted-in`): beside Stash's operator only those
labelled `stashplan.dev/scope: stashplan`, or in a Namespace so labelled, and the BackupSessions they invoke. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE

SCOPE_LABEL = "stashplan.dev/scope"
SCOPE_VALUE = "stashplan"
# The kinds scope decides about: what a Stash operator would act on too.
SCOPED_KINDS = ("BackupConfiguration", "RestoreSession", "BackupSession")


class Scope(StrEnum):
    ALL = "all"  # every BackupConfiguration and RestoreSession (no other Stash operator in the cluster)
    OPTED_IN = "opted-in"  # only those labelled SCOPE_LABEL=SCOPE_VALUE, themselves or by their Namespace


def parse_scope(value: str) -> Scope:
    """`value` as a Scope; a one-line error naming the choices otherwise."""
    try:
        return Scope(value.strip().lower())
    except ValueError:
        raise ValueError(f"--scope (STASHPLAN_SCOPE): {value!r} is not a scope; use all or opted-in") from None


def _labelled(obj: dict | None) -> bool:
    return bool(obj) and ((obj or {}).get("metadata", {}).get("labels") or {}).get(SCOPE_LABEL) == SCOPE_VALUE


def opted_in_namespaces(namespaces: Sequence[dict]) -> frozenset[str]:
    """The names of the Namespaces that carry the scope label."""
    return frozenset(n["metadata"]["name"] for n in namespaces if _labelled(n))


def in_scope(obj: dict, opted_namespaces: frozenset[str]) -> bool:
    """Whether a BackupConfiguration or RestoreSession is stashplan's in `opted-in` scope."""
    return _labelled(obj) or (obj.get("metadata") or {}).get("namespace") in opted_namespaces


def narrow(objects: Mapping[str, Sequence[dict]], scope: Scope) -> tuple[dict[str, Sequence[dict]], int]:
    """`objects` without the out-of-scope BackupConfigurations, RestoreSessions and BackupSessions (a session
    follows the BackupConfiguration that invokes it; one whose invoker is gone decides by its own labels and
    namespace), and how many were left out. With Scope.ALL, `objects` unchanged and 0."""
    if scope is Scope.ALL:
        return dict(objects), 0
    opted = opted_in_namespaces(objects.get("Namespace", ()))
    out = dict(objects)
    left = 0
    configs = {(o["metadata"]["namespace"], o["metadata"]["name"]): in_scope(o, opted)
               for o in objects.get("BackupConfiguration", ())}
    for kind in SCOPED_KINDS:
        kept = []
        for obj in objects.get(kind, ()):
            if kind == "BackupSession":
                keep = configs.get(_invoker(obj))
                keep = in_scope(obj, opted) if keep is None else keep
            else:
                keep = configs[(obj["metadata"]["namespace"], obj["metadata"]["name"])] \
                    if kind == "BackupConfiguration" else in_scope(obj, opted)
            if keep:
                kept.append(obj)
            else:
                left += 1
        if kind in objects:
            out[kind] = kept
    return out, left


def _invoker(session: dict) -> tuple[str, str]:
    """(namespace, name) of the BackupConfiguration a BackupSession names as its invoker."""
    meta = session.get("metadata") or {}
    ref = (session.get("spec") or {}).get("invoker") or {}
    labels = meta.get("labels") or {}
    if ref.get("kind", labels.get(INVOKER_TYPE, "BackupConfiguration")) != "BackupConfiguration":
        return ("", "")
    return (str(meta.get("namespace") or ""), str(ref.get("name") or labels.get(INVOKER_NAME) or ""))


def left_note(left: int) -> str:
    """The one summary line of what scope left out (empty when nothing was)."""
    return f"{left} object{'s' if left != 1 else ''} left to Stash (out of scope)" if left else ""
