"""A Namespace among the -f manifests in local mode: planned and applied like any other object (created first,
its labels updated, read by a Selector usage policy), settled after apply (never created twice), listed as an
orphan once the manifests drop it, and never deleted by --prune."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.api import builtin_addons
from stashplan.cli import app
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.incremental import INFORMED_KINDS, Incremental
from stashplan.operator.informer import Informer
from stashplan.operator.iteration import run_once

runner = CliRunner()
NEVER_PRUNED = "never pruned: deleting a Namespace deletes everything in it"


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def namespace(team: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": team}}}


def objects(tmp_path: Path) -> list[dict]:
    """demo's configuration, backing up into a Repository of `backups` shared with namespaces labelled team=pay."""
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
         "stringData": {"RESTIC_PASSWORD": "not-a-real-password"}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
         "metadata": {"name": "shared", "namespace": "backups"},
         "spec": {"backend": {"local": {"mountPath": str(tmp_path / "repo")}, "storageSecretName": "repo-secret"},
                  "usagePolicy": {"allowedNamespaces": {"from": "Selector",
                                                        "selector": {"matchLabels": {"team": "pay"}}}}}},
        {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
         "metadata": {"name": "db", "namespace": "demo"},
         "spec": {"type": "stashplan.dev/sqlite", "version": "3",
                  "clientConfig": {"url": f"sqlite:///{tmp_path}/app.db"}}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
         "metadata": {"name": "nightly", "namespace": "demo"},
         "spec": {"schedule": "0 3 * * *", "task": {"name": "sqlite-backup-3"}, "timeOut": "10m",
                  "retentionPolicy": {"name": "keep-last-5", "keepLast": 5, "prune": True},
                  "repository": {"name": "shared", "namespace": "backups"},
                  "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                     "name": "db"}}}},
    ]


def write(folder: Path, docs: list[dict]) -> None:
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))


def stored_namespace(state: str) -> dict | None:
    cluster = LocalCluster(state)
    try:
        found = cluster.list("Namespace")
        return found[0] if found else None
    finally:
        cluster.close()


def test_namespace_is_planned_applied_settled_updated_and_never_pruned(tmp_path: Path) -> None:
    folder, state = tmp_path / "m", str(tmp_path / "state.db")
    # The Namespace comes after what goes in it: the plan creates it first all the same.
    write(folder, [*objects(tmp_path), namespace("pay")])
    code, out = cli("plan", "-f", str(folder), "--state", state, "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert plan["refusals"] == []
    assert plan["changes"][0]["address"] == "Namespace/demo"
    assert plan["changes"][0]["action"] == "create"
    [status] = [c for c in plan["changes"] if c["address"] == "BackupConfiguration/demo/nightly" and c["action"] == "status"]
    assert status["after"]["phase"] == "Ready"
    code, out = cli("plan", "-f", str(folder), "--state", state)
    assert "+ Namespace/demo will be created" in out

    code, out = cli("apply", "-f", str(folder), "--state", state, "--auto-approve")
    assert code == 0, out
    assert (stored_namespace(state) or {})["metadata"]["labels"] == {"team": "pay",
                                                                    "app.kubernetes.io/managed-by": "stashplan"}
    code, out = cli("plan", "-f", str(folder), "--state", state, "--detailed-exitcode")
    assert code == 0, out
    assert "No changes. The cluster matches the configuration." in out
    code, out = cli("apply", "-f", str(folder), "--state", state, "--auto-approve")
    assert code == 0, out  # not AlreadyExists

    # Its labels are the manifests' to change, and the usage policy follows them.
    write(folder, [*objects(tmp_path), namespace("search")])
    code, out = cli("plan", "-f", str(folder), "--state", state)
    assert code == 1, out
    assert '~ metadata.labels.team: "pay" -> "search"' in out
    assert "Repository backups/shared does not allow namespace 'demo'" in out
    write(folder, [*objects(tmp_path), namespace("pay")])

    # Dropped from the manifests: an orphan, listed with why, even with --prune; never deleted.
    write(folder, objects(tmp_path))
    code, out = cli("plan", "-f", str(folder), "--state", state, "--prune", "--detailed-exitcode")
    assert code == 2, out
    assert "? Namespace/demo" in out and NEVER_PRUNED in out
    assert "- Namespace/demo" not in out
    code, out = cli("plan", "-f", str(folder), "--state", state, "--prune", "--json")
    assert [c for c in json.loads(out)["changes"] if c["kind"] == "Namespace"] == []
    code, out = cli("apply", "-f", str(folder), "--state", state, "--prune", "--auto-approve")
    assert code == 0, out
    assert stored_namespace(state) is not None
    code, out = cli("plan", "-f", str(folder), "--state", state, "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert plan["changes"] == [] and plan["refusals"] == []  # the stored Namespace's labels still allow demo
    assert [o["address"] for o in plan["orphans"]] == ["Namespace/demo"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path / "state.db")
    yield c
    c.close()


def test_loop_iterations_with_a_namespace_in_the_manifests_settle(tmp_path: Path, cluster: LocalCluster) -> None:
    # No Selector policy here: nothing else makes a plan read Namespaces.
    manifests = [namespace("pay"), *objects(tmp_path)]
    for obj in manifests:
        if obj["kind"] == "Repository":
            obj["metadata"]["namespace"] = "demo"
            del obj["spec"]["usagePolicy"]
        elif obj["kind"] == "BackupConfiguration":
            obj["spec"]["repository"] = {"name": "shared"}
    for i in range(3):
        it = run_once(cluster, manifests=manifests, addons=builtin_addons())
        assert not it.plan.refusals
        assert ("Namespace/demo" in [c.address for c in it.plan.changes]) is (i == 0)
    inc = Incremental(Informer(cluster, INFORMED_KINDS, chunk=2.0).start(), resync=1e9)
    try:
        for _ in range(2):
            plan, _ = inc.run_once(manifests=manifests, addons=builtin_addons())
            assert not [c for c in plan.changes if c.kind == "Namespace"]
    finally:
        inc.informer.close()
