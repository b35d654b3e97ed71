"""What a transfer connects with, read from the AppBinding as Stash reads it: secretTransforms applied to the
credentials Secret, and a service reached as `<name>.<namespace>.svc` (the target's namespace, not the Job's)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from providers.databases import get_provider
from stashplan.transfer.context import ContextError, load_backup
from tests.fixtures.transfer import StashWorld


def _appbinding(world: StashWorld, spec: dict, namespace: str = "demo") -> None:
    world.cluster.create({"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                          "metadata": {"name": "db", "namespace": namespace}, "spec": spec})


def test_secret_transforms_rename_add_remove_and_merge_before_connecting(stash_world: StashWorld,
                                                                        tmp_path: Path) -> None:
    stash_world.secret("db-creds", {"redis-password": "s3cret", "junk": "x"})
    stash_world.secret("more", {"port": "6380"})
    _appbinding(stash_world, {
        "type": "redis", "clientConfig": {"url": "redis://127.0.0.1:6379"}, "secret": {"name": "db-creds"},
        "secretTransforms": [
            {"renameKey": {"from": "redis-password", "to": "password"}},
            {"addKey": {"key": "username", "value": base64.b64encode(b"alice").decode()}},
            {"addKey": {"key": "db", "stringValue": "0"}},
            {"removeKey": {"key": "junk"}},
            {"addKeysFrom": {"secretRef": {"name": "more"}}},
        ]})
    stash_world.repository()
    stash_world.backup_config("bc", "db")
    stash_world.backup_session("bc", "bc-1")
    ctx = load_backup(stash_world.cluster, "demo", "bc-1")
    assert dict(ctx.db_secret) == {"password": "s3cret", "username": "alice", "db": "0", "port": "6380"}
    conn = get_provider("postgres").connection(ctx.appbinding, ctx.db_secret, tmp_path)
    assert (conn.username, conn.password) == ("alice", "s3cret")


def test_a_malformed_transform_names_the_appbinding_and_never_a_value(stash_world: StashWorld) -> None:
    stash_world.secret("db-creds", {"password": "s3cret"})
    _appbinding(stash_world, {"clientConfig": {"url": "redis://h"}, "secret": {"name": "db-creds"},
                              "secretTransforms": [{"renameKey": {"from": "password"}}]})
    stash_world.repository()
    stash_world.backup_config("bc", "db")
    stash_world.backup_session("bc", "bc-1")
    with pytest.raises(ContextError, match=r"^AppBinding demo/db: spec\.secretTransforms\[0\]\.renameKey: needs "
                                           r"from and to$"):
        load_backup(stash_world.cluster, "demo", "bc-1")


def test_a_service_is_reached_in_the_appbindings_namespace(tmp_path: Path) -> None:
    provider = get_provider("mysql")

    def host(service: dict, namespace: str = "prod") -> str:
        ab = {"metadata": {"name": "db", "namespace": namespace}, "spec": {"clientConfig": {"service": service}}}
        return provider.connection(ab, {}, tmp_path).host

    assert host({"name": "sample-mysql", "port": 3306}) == "sample-mysql.prod.svc"
    assert host({"name": "sample-mysql", "namespace": "other"}) == "sample-mysql.other.svc"
    assert host({"name": "127.0.0.1"}) == "127.0.0.1"
    assert host({"name": "localhost"}) == "localhost"
