"""Refused fields of objects read back from the cluster or the state (not only from -f manifests): a
BackupConfiguration or RestoreSession that kubectl created with a workload target or another field stashplan
refuses is Invalid with one line naming it, and the others still plan. Pure."""

from __future__ import annotations

from stashplan.api.refusals import field_refusals


def refused_field(kind: str, invoker: dict) -> str | None:
    """The first refused field set in `invoker`, as "<Kind> <ns>/<name>: <field>: refused: <why>", or None."""
    found = field_refusals(invoker)
    if not found:
        return None
    meta = invoker["metadata"]
    path, why = found[0]
    more = f" (and {len(found) - 1} more refused field(s))" if len(found) > 1 else ""
    return f"{kind} {meta.get('namespace', '')}/{meta['name']}: {path}: {why}{more}"
