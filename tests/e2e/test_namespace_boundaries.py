"""Namespace boundaries in local mode with real PostgreSQL: a BackupConfiguration or RestoreSession of team-a
whose target names team-b's AppBinding is refused at plan time (exit 1, one line, nothing written) and again by
the Job itself; team-b's database is never connected to (a counting proxy stands in front of it) and unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.cli import app
from stashplan.cluster.local.store import LocalCluster
from stashplan.transfer.context import ContextError, PodInputs
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.counting_proxy import CountingProxy
from tests.fixtures.databases import PG_PORT, PgDatabase
from tests.fixtures.transfer import StashWorld

APPBINDING = "appcatalog.appscode.com/v1alpha1"
CHECKSUM = "SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM accounts"


@pytest.fixture
def team_b(pg_database: Callable[[], PgDatabase],
           counting_proxy: Callable[[int], CountingProxy]) -> tuple[PgDatabase, CountingProxy, str]:
    """team-b's database with rows, behind a proxy that counts connections; (db, proxy, its checksum)."""
    db = pg_database()
    db.sql("CREATE TABLE accounts(id serial primary key, name text); "
           "INSERT INTO accounts(name) SELECT 'b-' || g FROM generate_series(1, 50) g")
    return db, counting_proxy(PG_PORT), db.sql(CHECKSUM)


def team_b_objects(db: PgDatabase, proxy: CountingProxy) -> list[dict]:
    url = f"postgresql://127.0.0.1:{proxy.port}/{db.name}?sslmode=disable"
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-auth", "namespace": "team-b"},
             "stringData": {"username": "postgres", "password": ""}},
            {"apiVersion": APPBINDING, "kind": "AppBinding", "metadata": {"name": "db", "namespace": "team-b"},
             "spec": {"type": "kubedb.com/postgres", "version": "15", "clientConfig": {"url": url},
                      "secret": {"name": "db-auth"}}}]


def team_b_ref() -> dict:
    return {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "db", "namespace": "team-b"}


def test_plan_refuses_targets_of_another_namespace_and_apply_writes_nothing(
    tmp_path: Path, team_b: tuple[PgDatabase, CountingProxy, str]
) -> None:
    db, proxy, checksum = team_b
    repo = {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
            "metadata": {"name": "repo", "namespace": "team-a"},
            "spec": {"backend": {"local": {"mountPath": str(tmp_path / "repo")}, "storageSecretName": "repo-secret"}}}
    objs = [*team_b_objects(db, proxy), repo,
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "team-a"},
             "stringData": {"RESTIC_PASSWORD": "team-a-password"}},
            {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
             "metadata": {"name": "steal", "namespace": "team-a"},
             "spec": {"schedule": "* * * * *", "repository": {"name": "repo"}, "target": {"ref": team_b_ref()},
                      "task": {"name": "postgres-backup-15"},
                      "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}},
            {"apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession",
             "metadata": {"name": "overwrite", "namespace": "team-a"},
             "spec": {"repository": {"name": "repo"}, "task": {"name": "postgres-restore-15"},
                      "target": {"ref": team_b_ref(), "rules": [{"snapshots": ["latest"]}]}}}]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump_all(objs))
    state = tmp_path / "state.db"
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = CliRunner().invoke(app, [*command, "-f", str(tmp_path / "m.yaml"), "--state", str(state)])
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert errors == [
            "error: BackupConfiguration team-a/steal: spec.target.ref.namespace: AppBinding team-b/db is in another "
            "namespace; a target must be in the BackupConfiguration's own namespace (team-a), so that a namespace "
            "reaches only its own objects (Stash's cross-namespace targets are not supported: create the "
            "BackupConfiguration in team-b)",
            "error: RestoreSession team-a/overwrite: spec.target.ref.namespace: AppBinding team-b/db is in another "
            "namespace; a target must be in the RestoreSession's own namespace (team-a), so that a namespace reaches "
            "only its own objects (Stash's cross-namespace targets are not supported: create the RestoreSession in "
            "team-b)"], result.output
    cluster = LocalCluster(state)
    try:
        assert not cluster.list("CronJob") and not cluster.list("Job")  # nothing of them ever runs
        # Stored with their phase and reason (issue 22: one bad object never blocks the others; apply exits 1)
        assert [c["status"]["phase"] for c in cluster.list("BackupConfiguration")] == ["Invalid"]
        assert [r["status"]["phase"] for r in cluster.list("RestoreSession")] == ["Invalid"]
        assert not [b for b in cluster.list("RoleBinding") if b["metadata"]["namespace"] != "team-a"]
    finally:
        cluster.close()
    assert proxy.connections == 0 and db.sql(CHECKSUM) == checksum


def _plant(w: StashWorld, db: PgDatabase, proxy: CountingProxy) -> None:
    """team-b's objects, and team-a's Repository, written to the store directly (as if the plan were bypassed)."""
    for obj in team_b_objects(db, proxy):
        w.cluster.create(obj)
    w.repository()


def test_a_backup_job_refuses_a_target_of_another_namespace_without_connecting(
    stash_world: StashWorld, team_b: tuple[PgDatabase, CountingProxy, str]
) -> None:
    db, proxy, checksum = team_b
    w = stash_world
    _plant(w, db, proxy)
    config = w.backup_config("steal", "db")
    config["spec"]["target"]["ref"]["namespace"] = "team-b"
    w.cluster.replace(config)
    w.backup_session("steal", "steal-1")
    with pytest.raises(ContextError) as err:
        backup(w.cluster, w.namespace, "steal-1", TransferOptions(database="postgres"))
    assert str(err.value) == ("BackupConfiguration demo/steal: spec.target.ref.namespace: AppBinding team-b/db is in "
                              "another namespace; a target must be in the session's own namespace (demo)")
    assert proxy.connections == 0 and db.sql(CHECKSUM) == checksum


def test_a_restore_job_refuses_a_target_of_another_namespace_and_leaves_its_table(
    stash_world: StashWorld, team_b: tuple[PgDatabase, CountingProxy, str], pg_database: Callable[[], PgDatabase]
) -> None:
    db, proxy, checksum = team_b
    w = stash_world
    _plant(w, db, proxy)
    own = pg_database()  # team-a's own database, backed up so that a snapshot to restore exists
    own.sql("CREATE TABLE accounts(id serial primary key, name text); INSERT INTO accounts(name) VALUES ('a-1')")
    w.appbinding("own", own.url, app_type="kubedb.com/postgres", username="postgres")
    w.backup_config("own-backup", "own")
    w.backup_session("own-backup", "own-1")
    assert backup(w.cluster, w.namespace, "own-1", TransferOptions(database="postgres")).ok
    w.restore_session("overwrite", "db")
    session = w.cluster.get("RestoreSession", w.namespace, "overwrite")
    session["spec"]["target"]["ref"]["namespace"] = "team-b"
    w.cluster.replace(session)
    with pytest.raises(ContextError, match=r"AppBinding team-b/db is in another namespace"):
        restore(w.cluster, w.namespace, "overwrite", TransferOptions(database="postgres"))
    assert proxy.connections == 0 and db.sql(CHECKSUM) == checksum


def test_a_job_uses_a_shared_repository_only_as_its_usage_policy_allows(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    db = pg_database()
    db.sql("CREATE TABLE accounts(id serial primary key, name text); INSERT INTO accounts(name) VALUES ('a')")
    w.appbinding("own", db.url, app_type="kubedb.com/postgres", username="postgres")
    shared = {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
              "metadata": {"name": "shared", "namespace": "backups"},
              "spec": {"backend": {"local": {"mountPath": str(w.root / "shared")}, "storageSecretName": "shared-secret"}}}
    w.cluster.create(shared)
    w.secret("shared-secret", {"RESTIC_PASSWORD": "demo-holds-the-password"})  # of the session's namespace
    config = w.backup_config("to-shared", "own", repo="shared")
    config["spec"]["repository"]["namespace"] = "backups"
    w.cluster.replace(config)
    w.backup_session("to-shared", "to-shared-1")
    with pytest.raises(ContextError) as err:  # usagePolicy absent: Same
        backup(w.cluster, w.namespace, "to-shared-1", TransferOptions(database="postgres"))
    assert str(err.value) == ("BackupConfiguration demo/to-shared: spec.repository: Repository backups/shared does not "
                              "allow namespace 'demo' (spec.usagePolicy.allowedNamespaces.from: Same)")
    # Shared with every namespace, and given to the pod by its spec (a Job reads only its own namespace).
    allowed = dict(shared, spec={**shared["spec"], "usagePolicy": {"allowedNamespaces": {"from": "All"}}})
    given = PodInputs(kubelet_gives_secrets(w, ["own-auth", "shared-secret"]), repository=allowed)
    result = backup(w.cluster, w.namespace, "to-shared-1", TransferOptions(database="postgres", given=given))
    assert result.ok, result.error


def kubelet_gives_secrets(w: StashWorld, names: list[str]) -> dict[str, dict[str, str]]:
    from stashplan.secrets import secret_data

    return {n: secret_data(w.cluster.get("Secret", w.namespace, n)) for n in names}


def test_a_job_names_a_secret_its_pod_was_not_given_or_that_does_not_exist(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase]
) -> None:
    w = stash_world
    w.appbinding("own", pg_database().url, app_type="kubedb.com/postgres", username="postgres")
    w.repository()
    w.backup_config("cfg", "own")
    w.backup_session("cfg", "cfg-1")
    for secrets, message in (
        ({"repo-secret": {"RESTIC_PASSWORD": "x"}},
         "AppBinding demo/own: spec.secret: Secret demo/own-auth was not given to this pod by its spec"),
        ({"repo-secret": {"RESTIC_PASSWORD": "x"}, "own-auth": {}},
         "AppBinding demo/own: spec.secret: Secret demo/own-auth not found (or it holds no data)"),
    ):
        with pytest.raises(ContextError) as err:
            backup(w.cluster, w.namespace, "cfg-1", TransferOptions(database="postgres", given=PodInputs(secrets)))
        assert str(err.value) == message
