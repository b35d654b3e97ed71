"""`--scope opted-in` through the CLI in local mode: beside Stash, only objects labelled stashplan.dev/scope=stashplan
(themselves or by their Namespace) get CronJobs, Jobs, status and Events; the rest is one summary line."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.cluster.local.store import LocalCluster
from tests.fixtures.examples import copy_examples

runner = CliRunner()
OPT = {"stashplan.dev/scope": "stashplan"}


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def state(tmp_path: Path) -> str:
    """team-a (labelled) and team-b (not) each with the local-sqlite example as Stash's users made it (no
    stashplan label); team-b also holds a configuration labelled itself and a BackupSession Stash's CronJob made."""
    folder = copy_examples(tmp_path / "manifests", tmp_path / "demo")
    docs = [d for p in sorted(folder.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    path = tmp_path / "state.db"
    cluster = LocalCluster(path)
    cluster.create({"kind": "Namespace", "metadata": {"name": "team-a", "labels": OPT}})
    cluster.create({"kind": "Namespace", "metadata": {"name": "team-b"}})
    for ns in ("team-a", "team-b"):
        for doc in docs:
            obj = copy.deepcopy(doc)
            obj["metadata"]["namespace"] = ns
            cluster.create(obj)
    config = cluster.get("BackupConfiguration", "team-b", "app-db-backup")
    mine = copy.deepcopy(config)
    mine["metadata"] = {"name": "mine", "namespace": "team-b", "labels": OPT}
    cluster.create(mine)
    cluster.create({"kind": "BackupSession", "apiVersion": "stash.appscode.com/v1beta1",
                    "metadata": {"name": "app-db-backup-1", "namespace": "team-b",
                                 "labels": {"stash.appscode.com/invoker-type": "BackupConfiguration",
                                            "stash.appscode.com/invoker-name": "app-db-backup"}},
                    "spec": {"invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration",
                                         "name": "app-db-backup"}}})  # fmt: skip
    cluster.close()
    return str(path)


def test_opted_in_plans_only_labelled_namespaces_and_objects_and_counts_the_rest(state: str) -> None:
    code, out = cli("plan", "--state", state, "--scope", "opted-in")
    assert code == 0, out
    assert "+ CronJob/team-a/stash-trigger-app-db-backup will be created" in out
    assert "+ CronJob/team-b/stash-trigger-mine will be created" in out
    assert "team-b/stash-trigger-app-db-backup" not in out and "team-b/app-db-backup" not in out
    assert out.count("2 objects left to Stash (out of scope)") == 1
    code, out = cli("plan", "--state", state)  # local mode, no Stash CRDs: every object is stashplan's
    assert code == 0, out
    assert "+ CronJob/team-b/stash-trigger-app-db-backup will be created" in out and "out of scope" not in out


def test_apply_in_opted_in_scope_writes_nothing_to_the_objects_left_to_stash(state: str) -> None:
    code, out = cli("apply", "--state", state, "--auto-approve", env={"STASHPLAN_SCOPE": "opted-in"})
    assert code == 0, out
    cluster = LocalCluster(state)
    try:
        assert "status" not in cluster.get("BackupConfiguration", "team-b", "app-db-backup")
        assert "status" not in cluster.get("BackupSession", "team-b", "app-db-backup-1")
        assert [c["metadata"]["name"] for c in cluster.list("CronJob", "team-b")] == ["stash-trigger-mine"]
        assert not cluster.list("Job", "team-b")
        assert not [e for e in cluster.list("Event", "team-b")
                    if e["involvedObject"]["name"] in ("app-db-backup", "app-db-backup-1")]
        assert cluster.get("BackupConfiguration", "team-a", "app-db-backup")["status"]["phase"] == "Ready"
        assert [c["metadata"]["name"] for c in cluster.list("CronJob", "team-a")] == ["stash-trigger-app-db-backup"]
        # and back: team-a's label removed, stashplan's CronJob there goes; Stash's objects stay as they are
        team_a = cluster.get("Namespace", "", "team-a")
        cluster.replace({**team_a, "metadata": {**team_a["metadata"], "labels": {}}})
    finally:
        cluster.close()
    code, out = cli("plan", "--state", state, "--scope", "opted-in")
    assert "- CronJob/team-a/stash-trigger-app-db-backup will be destroyed" in out, out
    assert "3 objects left to Stash (out of scope)" in out


def test_a_scope_that_is_not_all_or_opted_in_is_one_line_and_exit_1(state: str) -> None:
    code, out = cli("plan", "--state", state, "--scope", "some")
    assert code == 1
    assert out.strip().splitlines() == ["error: --scope (STASHPLAN_SCOPE): 'some' is not a scope; use all or opted-in"]


def test_install_can_leave_the_crds_out_and_adopting_needs_a_cluster() -> None:
    code, out = cli("install", "--skip-crds")
    assert code == 0 and "kind: Deployment" in out and "CustomResourceDefinition" not in out
    code, out = cli("install", "--adopt-crds")
    assert code == 1 and "--adopt-crds needs --cluster kube" in out
    code, out = cli("crds", "--cluster", "local")
    assert code == 1 and "only a Kubernetes cluster (--cluster kube) has CRDs to check" in out
