"""What KubeDB and Stash's auto-backup would create, as stashplan plans it: names, namespaces, substitution."""

from __future__ import annotations

from stashplan.api.kubedb import appbinding_for
from stashplan.desired.generated import auto_backup, generate, retired

BLUEPRINT = {
    "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupBlueprint", "metadata": {"name": "mysql-backup"},
    "spec": {"backend": {"s3": {"endpoint": "http://s3", "bucket": "b",
                                "prefix": "stash-backup/${TARGET_NAMESPACE}/${TARGET_KIND}/${TARGET_NAME}"},
                         "storageSecretName": "s3-secret"},
             "schedule": "*/5 * * * *", "retentionPolicy": {"name": "keep-last-5", "keepLast": 5, "prune": True},
             "runtimeSettings": {"pod": {"serviceAccountName": "cross-namespace-target-reader"}}},
}


def appbinding(ns: str, name: str, **annotations: str) -> dict:
    return {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations},
            "spec": {"type": "kubedb.com/mysql", "version": "8.0.27"}}


def test_backup_namespace_names_as_stash_does_and_points_back_at_the_target() -> None:
    blueprint = {**BLUEPRINT, "spec": {**BLUEPRINT["spec"], "backupNamespace": "backup"}}
    repo, config = auto_backup(appbinding("prod-1", "sample-mysql-1"), blueprint)
    assert (repo["metadata"]["namespace"], repo["metadata"]["name"]) == ("backup", "prod-1-app-sample-mysql-1")
    assert repo["spec"]["backend"]["s3"]["prefix"] == "stash-backup/prod-1/appbinding/sample-mysql-1"
    assert (config["metadata"]["namespace"], config["metadata"]["name"]) == ("backup", "prod-1-app-sample-mysql-1")
    assert config["spec"]["target"]["ref"] == {"apiVersion": "appcatalog.appscode.com/v1alpha1",
                                               "kind": "AppBinding", "name": "sample-mysql-1", "namespace": "prod-1"}
    assert config["spec"]["repository"] == {"name": "prod-1-app-sample-mysql-1"}
    assert config["spec"]["runtimeSettings"] == {"pod": {"serviceAccountName": "cross-namespace-target-reader"}}


def test_repo_namespace_puts_the_repository_apart() -> None:
    blueprint = {**BLUEPRINT, "spec": {**BLUEPRINT["spec"], "backupNamespace": "backup", "repoNamespace": "repos"}}
    repo, config = auto_backup(appbinding("prod", "db"), blueprint)
    assert repo["metadata"]["namespace"] == "repos"
    assert config["spec"]["repository"] == {"name": "prod-app-db", "namespace": "repos"}


def test_kubedb_appbinding_uses_the_auth_secret_it_names_and_carries_stash_annotations() -> None:
    db = {"apiVersion": "kubedb.com/v1alpha2", "kind": "MariaDB",
          "metadata": {"name": "maria", "namespace": "demo",
                       "annotations": {"stash.appscode.com/backup-blueprint": "b", "other": "x"}},
          "spec": {"version": "10.5.23", "authSecret": {"name": "my-auth"}}}
    made = appbinding_for(db)
    assert made["spec"]["secret"] == {"name": "my-auth"}
    assert made["spec"]["clientConfig"]["service"] == {"name": "maria", "port": 3306, "scheme": "mysql", "path": "/"}
    assert made["metadata"]["annotations"] == {"stash.appscode.com/backup-blueprint": "b"}


def test_generation_prefers_a_given_appbinding_and_retires_configurations_no_one_asks_for() -> None:
    db = {"apiVersion": "kubedb.com/v1alpha2", "kind": "MySQL", "metadata": {"name": "db", "namespace": "prod"},
          "spec": {"version": "8.0.27"}}
    given = appbinding("prod", "db", **{"stash.appscode.com/backup-blueprint": "mysql-backup"})
    out = generate([db, given, BLUEPRINT], {})
    assert [o["kind"] for o in out.objects] == ["Repository", "BackupConfiguration"]
    assert out.notes[0] == "MySQL prod/db (KubeDB) is not applied by stashplan; its AppBinding prod/db is given"
    old = {"kind": "BackupConfiguration", "metadata": {"name": "app-gone", "namespace": "prod", "labels": {
        "app.kubernetes.io/managed-by": "stashplan", "stash.appscode.com/auto-backup-blueprint": "mysql-backup"}}}
    mine = {"kind": "BackupConfiguration", "metadata": {"name": "mine", "namespace": "prod", "labels": {
        "app.kubernetes.io/managed-by": "stashplan"}}}
    assert retired({"BackupConfiguration": [old, mine]}, set()) == [old]
