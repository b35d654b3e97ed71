"""Who owns the Stash CRDs in a cluster: stashplan, or another installation (Stash's Helm release, its operator).
`install`/`crds --cluster kube` refuse to overwrite another's (unless --adopt-crds), and the loop's default scope
is `opted-in` while another installation owns them. Pure, apart from `read_crds` (one get per CRD).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence

from stashplan.cluster.base import Cluster
from stashplan.desired.scope import SCOPE_LABEL, SCOPE_VALUE, Scope
from stashplan.errors import Forbidden, NotFound, StashplanError
from stashplan.kinds import KINDS

log = logging.getLogger("stashplan.operator.scope")

NAME_LABEL = "app.kubernetes.io/name"  # stashplan's CRDs carry app.kubernetes.io/name: stashplan
OURS = "stashplan"
ADOPTED_ANNOTATION = "stashplan.dev/adopted-from"  # on CRDs taken over with --adopt-crds: whose they were
HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"
_OWNER_LABELS = ("app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/part-of",
                 "helm.sh/chart", NAME_LABEL)


def stash_crd_names() -> list[str]:
    """The names of the CRDs stashplan installs (the Stash kinds and AppBinding)."""
    from stashplan.api.crds import CRD_KINDS

    return [f"{KINDS[k].plural}.{KINDS[k].group}" for k in CRD_KINDS]


def owner(crd: dict) -> str | None:
    """Which other installation owns `crd`, in words ("Helm release stash in namespace kube-system"); None when it
    is stashplan's. A CRD without stashplan's label is another's, marked or not."""
    meta = crd.get("metadata") or {}
    labels, notes = meta.get("labels") or {}, meta.get("annotations") or {}
    if labels.get(NAME_LABEL) == OURS:
        return None
    if release := notes.get(HELM_RELEASE):
        where = f" in namespace {notes[HELM_NAMESPACE]}" if notes.get(HELM_NAMESPACE) else ""
        return f"Helm release {release}{where} ({HELM_RELEASE})"
    marks = [f"{k}={labels[k]}" for k in _OWNER_LABELS if labels.get(k)]
    if marks:
        return "the installation labelled " + ", ".join(marks)
    return f"an unlabelled installation (it lacks the label {NAME_LABEL}={OURS})"


def read_crds(cluster: Cluster) -> dict[str, dict]:
    """The Stash CRDs that exist in `cluster`, by name."""
    found: dict[str, dict] = {}
    for name in stash_crd_names():
        try:
            found[name] = cluster.get("CustomResourceDefinition", "", name)
        except NotFound:
            continue
    return found


def foreign(existing: Mapping[str, dict]) -> dict[str, str]:
    """CRD name -> its other owner, for the existing CRDs that are not stashplan's."""
    return {name: who for name, crd in sorted(existing.items()) if (who := owner(crd)) is not None}


def check_crds(existing: Mapping[str, dict], *, adopt: bool, command: str = "install") -> dict[str, str]:
    """Refuse (one line) to overwrite CRDs another installation owns unless `adopt`; returns those it would adopt."""
    others = foreign(existing)
    if others and not adopt:
        first, who = next(iter(others.items()))
        more = f" and {len(others) - 1} more belong" if len(others) > 1 else " belongs"
        raise StashplanError(
            f"{command}: CustomResourceDefinition {first}{more} to {who}; refusing to overwrite them "
            f"(--skip-crds runs stashplan beside it on its CRDs, in opted-in scope; --adopt-crds takes them over)")
    return others


def adopted(crds: Sequence[dict], others: Mapping[str, str]) -> list[dict]:
    """`crds` with each one taken over from another installation saying whose it was (ADOPTED_ANNOTATION)."""
    out = []
    for crd in crds:
        name = crd["metadata"]["name"]
        if name in others:
            crd = copy.deepcopy(crd)
            crd["metadata"].setdefault("annotations", {})[ADOPTED_ANNOTATION] = others[name]
        out.append(crd)
    return out


def detect_scope(cluster: Cluster) -> tuple[Scope, str]:
    """The default scope and why: `opted-in` while another installation owns the Stash CRDs, else `all`. A cluster
    that may not read CRDs (an older ClusterRole) gets `all`, saying so."""
    try:
        others = foreign(read_crds(cluster))
    except Forbidden:
        return Scope.ALL, ("scope: all (this identity may not read CustomResourceDefinitions, so another Stash "
                           "installation cannot be detected; pass --scope opted-in beside one)")
    if not others:
        return Scope.ALL, ""
    first, who = next(iter(others.items()))
    return Scope.OPTED_IN, (f"scope: opted-in, because CustomResourceDefinition {first} belongs to {who}: only "
                            f"objects labelled {SCOPE_LABEL}={SCOPE_VALUE}, or in a Namespace so labelled, are "
                            "stashplan's (--scope all acts on every one)")


def install_documents(docs: Sequence[dict], existing: Mapping[str, dict] | None, *, adopt: bool = False,
                      skip_crds: bool = False, command: str = "install") -> list[dict]:
    """The install (or crds) documents as checked against the CRDs that exist (`existing`; None: not checked):
    without CRDs for --skip-crds, refused while another installation owns one unless `adopt`, which marks those
    it takes over."""
    if skip_crds:
        return [d for d in docs if d.get("kind") != "CustomResourceDefinition"]
    if existing is None:
        if adopt:
            raise StashplanError(f"{command}: --adopt-crds needs --cluster kube (it takes over the CRDs it finds there)")
        return list(docs)
    others = check_crds(existing, adopt=adopt, command=command)
    crds = adopted([d for d in docs if d.get("kind") == "CustomResourceDefinition"], others)
    it = iter(crds)
    return [next(it) if d.get("kind") == "CustomResourceDefinition" else d for d in docs]
