"""Reading what exists for a plan (one list call per kind) and planning against it: the I/O front of the pure
planner, used by `plan`, `apply` and every loop iteration."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import orjson

from stashplan.cluster.base import Cluster
from stashplan.desired.compute import Settings
from stashplan.desired.scope import Scope
from stashplan.desired.stored import StoredObjects
from stashplan.errors import NotFound
from stashplan.kinds import identity
from stashplan.plan.build import COMPARED_KINDS, Inputs, build, lists_namespaces, read_kinds, reads_secrets
from stashplan.plan.model import Plan


def read_actual(cluster: Cluster, namespace: str | None = None,
                manifests: Sequence[dict] = (), from_files: bool = False) -> dict[str, Sequence[dict]]:
    """Every object the planner needs: one list call per kind, whatever the number of objects.

    Namespaces are read when planning from files (-f: a Namespace among the manifests is compared, one applied
    earlier is an orphan) or when a Repository shares itself by namespace selector (their labels). An object
    whose spec equals its manifest's holds the manifest's spec (one copy, not two). In local mode rows are parsed
    one by one, and compare-only kinds stay text until compared (StoredObjects)."""
    by_key = {identity(m): m for m in manifests}
    list_text = getattr(cluster, "list_text", None)
    actual: dict[str, Sequence[dict]] = {}
    for kind in read_kinds(cluster):
        if list_text is None:
            actual[kind] = [_compacted(o, by_key) for o in cluster.list(kind, namespace)]
        elif kind in COMPARED_KINDS:
            actual[kind] = StoredObjects(list_text(kind, namespace))
        else:
            actual[kind] = [_compacted(orjson.loads(text), by_key) for _, text in list_text(kind, namespace)]
    if "Secret" not in actual and (named := manifest_secrets(cluster, manifests)):
        actual["Secret"] = named
    if lists_namespaces(actual["Repository"], manifests, from_files):
        actual["Namespace"] = cluster.list("Namespace")
    return actual


def manifest_secrets(cluster: Cluster, manifests: Sequence[dict]) -> list[dict]:
    """The Secrets the manifests hold, as they exist, read by name: where Secrets are not listed (kube mode) a
    plan still compares the manifests' own (with the identity applying them)."""
    return [o for m in manifests if m.get("kind") == "Secret" and (o := _get_or_none(cluster, m)) is not None]


def _get_or_none(cluster: Cluster, obj: dict) -> dict | None:
    try:
        return cluster.get(obj["kind"], obj["metadata"].get("namespace") or "default", obj["metadata"]["name"])
    except NotFound:
        return None


def _compacted(obj: dict, manifests: Mapping[tuple[str, str, str], dict]) -> dict:
    """`obj`, just read and ours to change, in less memory: holding its manifest's spec when the two are equal, and
    the short strings of its status (phase, condition types, reasons, times) interned."""
    if manifests and (m := manifests.get(identity(obj))) is not None and "spec" in m and obj.get("spec") == m["spec"]:
        obj["spec"] = m["spec"]
    status = obj.get("status")
    for flat in (status, *(status.get("conditions") or () if isinstance(status, dict) else ())):
        if type(flat) is dict:
            for key, value in flat.items():
                if type(value) is str and len(value) <= 64:
                    flat[key] = sys.intern(value)
    return obj


def make_plan(
    cluster: Cluster,
    *,
    manifests: Sequence[dict] = (),
    addons: Sequence[dict] = (),
    sources: Sequence[str] = (),
    namespace: str | None = None,
    settings: Settings = Settings(),
    now: datetime | None = None,
    prune: bool = False,
) -> Plan:
    actual = read_actual(cluster, namespace, manifests, from_files=bool(sources))
    if settings.scope is not Scope.ALL and "Namespace" not in actual:  # their labels opt whole namespaces in
        actual["Namespace"] = cluster.list("Namespace")
    inputs = Inputs(actual=actual, manifests=manifests, addons=addons, sources=sources, prune=prune,
                    secrets_read=reads_secrets(cluster))
    return build(inputs, now or datetime.now(UTC), settings)
