"""Namespace boundaries of desired state: a BackupConfiguration's or RestoreSession's target is in its own
namespace (Stash's cross-namespace targets are refused: a namespace reaches only its own objects), and a Repository of another namespace is used only as its usagePolicy allows. Pure."""

from __future__ import annotations

from stashplan.desired.reads import target_key


def foreign_target(kind_of_invoker: str, invoker: dict) -> str | None:
    """Why the invoker's target ref is refused (it names another namespace), or None. One line naming the
    resource and the field."""
    meta = invoker["metadata"]
    ns = meta["namespace"]
    kind, target_ns, name = target_key(invoker)
    if target_ns == ns:
        return None
    return (f"{kind_of_invoker} {ns}/{meta['name']}: spec.target.ref.namespace: {kind} {target_ns}/{name} is in "
            f"another namespace; a target must be in the {kind_of_invoker}'s own namespace ({ns}), so that a namespace "
            f"reaches only its own objects (Stash's cross-namespace targets are not supported: create the "
            f"{kind_of_invoker} in {target_ns})")
