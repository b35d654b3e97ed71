"""Scope beside Stash (stashplan.desired.scope) and who owns the Stash CRDs (stashplan.operator.crd_owners): pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from stashplan.cluster.local.store import LocalCluster
from stashplan.desired.scope import Scope, left_note, narrow, parse_scope
from stashplan.errors import StashplanError
from stashplan.operator.crd_owners import ADOPTED_ANNOTATION, detect_scope, install_documents, owner
from stashplan.operator.install import install_objects

OPT = {"stashplan.dev/scope": "stashplan"}


def ns(name: str, labels: dict | None = None) -> dict:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def obj(kind: str, namespace: str, name: str, labels: dict | None = None, invoker: str = "") -> dict:
    o: dict = {"kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": {}}
    if invoker:
        o["spec"]["invoker"] = {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration", "name": invoker}
    return o


def names(objects: dict, kind: str) -> list[str]:
    return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects.get(kind, []))


WORLD = {
    "Namespace": [ns("team-a", OPT), ns("team-b"), ns("team-c", {"stashplan.dev/scope": "stash"})],
    "BackupConfiguration": [obj("BackupConfiguration", "team-a", "db"), obj("BackupConfiguration", "team-b", "db"),
                            obj("BackupConfiguration", "team-b", "mine", OPT),
                            obj("BackupConfiguration", "team-c", "db")],
    "BackupSession": [obj("BackupSession", "team-a", "db-1", invoker="db"),
                      obj("BackupSession", "team-b", "db-1", invoker="db"),
                      obj("BackupSession", "team-b", "mine-1", invoker="mine"),
                      obj("BackupSession", "team-b", "gone-1", invoker="gone"),
                      obj("BackupSession", "team-a", "gone-1", invoker="gone")],
    "RestoreSession": [obj("RestoreSession", "team-a", "r"), obj("RestoreSession", "team-b", "r"),
                       obj("RestoreSession", "team-b", "r-mine", OPT)],
}


def test_opted_in_keeps_objects_labelled_themselves_or_by_their_namespace_and_sessions_follow_their_invoker() -> None:
    kept, left = narrow(WORLD, Scope.OPTED_IN)
    assert names(kept, "BackupConfiguration") == ["team-a/db", "team-b/mine"]
    assert names(kept, "BackupSession") == ["team-a/db-1", "team-a/gone-1", "team-b/mine-1"]
    assert names(kept, "RestoreSession") == ["team-a/r", "team-b/r-mine"]
    assert left == 2 + 2 + 1  # team-b/db and team-c/db (another label value is not an opt-in), their sessions
    assert kept["Namespace"] == WORLD["Namespace"]
    assert left_note(left) == "5 objects left to Stash (out of scope)" and left_note(1).startswith("1 object left")


def test_scope_all_keeps_everything_and_says_nothing() -> None:
    kept, left = narrow(WORLD, Scope.ALL)
    assert kept == WORLD and left == 0 and left_note(left) == ""


def test_a_stash_made_session_is_decided_by_its_invoker_label_when_it_names_no_invoker_in_spec() -> None:
    session = obj("BackupSession", "team-b", "db-2", {"stash.appscode.com/invoker-type": "BackupConfiguration",
                                                     "stash.appscode.com/invoker-name": "mine"})
    kept, _ = narrow({**WORLD, "BackupSession": [session]}, Scope.OPTED_IN)
    assert names(kept, "BackupSession") == ["team-b/db-2"]


def test_scope_values_are_all_and_opted_in_and_anything_else_is_one_line() -> None:
    assert parse_scope("opted-in") is Scope.OPTED_IN and parse_scope(" ALL ") is Scope.ALL
    with pytest.raises(ValueError, match=r"^--scope \(STASHPLAN_SCOPE\): 'some' is not a scope; use all or opted-in$"):
        parse_scope("some")


def crd(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {"kind": "CustomResourceDefinition",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


HELM = crd("backupconfigurations.stash.appscode.com", {"app.kubernetes.io/name": "stash",
                                                       "app.kubernetes.io/managed-by": "Helm"},
           {"meta.helm.sh/release-name": "stash", "meta.helm.sh/release-namespace": "kube-system"})


def test_the_owner_of_a_crd_is_named_from_helm_annotations_or_labels_and_stashplans_own_are_none() -> None:
    assert owner(HELM) == "Helm release stash in namespace kube-system (meta.helm.sh/release-name)"
    assert owner(crd("x", {"app.kubernetes.io/name": "stash"})) == \
        "the installation labelled app.kubernetes.io/name=stash"
    assert owner(crd("x", {"app.kubernetes.io/managed-by": "kapp"})) == \
        "the installation labelled app.kubernetes.io/managed-by=kapp"
    assert "unlabelled installation" in str(owner(crd("x")))
    assert owner(crd("x", {"app.kubernetes.io/name": "stashplan"})) is None
    # stashplan's own chart: Helm's annotations, stashplan's label
    assert owner(crd("x", {"app.kubernetes.io/name": "stashplan"}, {"meta.helm.sh/release-name": "sp"})) is None


def test_install_refuses_crds_another_installation_owns_in_one_line_unless_adopting() -> None:
    docs = install_objects()
    existing = {"backupconfigurations.stash.appscode.com": HELM,
                "tasks.stash.appscode.com": crd("tasks.stash.appscode.com", {"app.kubernetes.io/name": "stash"})}
    with pytest.raises(StashplanError) as refused:
        install_documents(docs, existing)
    assert str(refused.value) == (
        "install: CustomResourceDefinition backupconfigurations.stash.appscode.com and 1 more belong to Helm release "
        "stash in namespace kube-system (meta.helm.sh/release-name); refusing to overwrite them (--skip-crds runs "
        "stashplan beside it on its CRDs, in opted-in scope; --adopt-crds takes them over)")
    taken = install_documents(docs, existing, adopt=True)
    marks = {d["metadata"]["name"]: (d["metadata"].get("annotations") or {}).get(ADOPTED_ANNOTATION)
             for d in taken if d["kind"] == "CustomResourceDefinition"}
    assert marks["backupconfigurations.stash.appscode.com"].startswith("Helm release stash")
    assert marks["tasks.stash.appscode.com"] == "the installation labelled app.kubernetes.io/name=stash"
    assert marks["repositories.stash.appscode.com"] is None
    assert [d["kind"] for d in taken] == [d["kind"] for d in docs]
    ours = {n: crd(n, {"app.kubernetes.io/name": "stashplan"}) for n in existing}
    assert install_documents(docs, ours) == docs  # stashplan's own CRDs: updated as before


def test_skip_crds_leaves_every_crd_out_and_adopting_needs_a_cluster() -> None:
    docs = install_objects()
    assert not [d for d in install_documents(docs, None, skip_crds=True) if d["kind"] == "CustomResourceDefinition"]
    assert install_documents(docs, None) == docs
    with pytest.raises(StashplanError, match="--adopt-crds needs --cluster kube"):
        install_documents(docs, None, adopt=True)


def test_the_default_scope_is_opted_in_while_another_installation_owns_the_crds(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "state.db")  # any Cluster: the store holds CRDs as it holds every kind
    assert detect_scope(cluster) == (Scope.ALL, "")
    mine = cluster.create(crd("backupconfigurations.stash.appscode.com", {"app.kubernetes.io/name": "stashplan"}))
    assert detect_scope(cluster) == (Scope.ALL, "")
    cluster.replace({**mine, "metadata": {**mine["metadata"], **HELM["metadata"]}})
    scope, why = detect_scope(cluster)
    assert scope is Scope.OPTED_IN
    assert why.startswith("scope: opted-in, because CustomResourceDefinition backupconfigurations.stash.appscode.com "
                          "belongs to Helm release stash")
