"""KubeCluster against the API emulator: retries, typed errors, RBAC, watch resume and relist, call counts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml

from stashplan.cluster.kube import KubeCluster, RetryPolicy
from stashplan.errors import Forbidden, Invalid, NotFound, StashplanError, TransientError
from tests.fixtures.kube import KubeAPI

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


def config(name: str, ns: str = "team-a") -> dict:
    return {"kind": "BackupConfiguration", "metadata": {"name": name, "namespace": ns}, "spec": {}}


def test_server_errors_and_throttling_are_retried_until_they_pass(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig, retry=FAST)
    kube_api.fail_next(500, count=2)
    kube_api.fail_next(429, count=1)
    created = cluster.create(config("db"))
    assert created["metadata"]["name"] == "db"
    assert kube_api.counts["create"] == 4
    kube_api.fail_next(503, count=1, verb="list")
    assert [o["metadata"]["name"] for o in cluster.list("BackupConfiguration")] == ["db"]


def test_persistent_server_errors_become_one_transient_error_naming_the_call(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig, retry=FAST)
    kube_api.fail_next(500, count=10, verb="get")
    with pytest.raises(
        TransientError, match=r"get backupconfigurations\.stash\.appscode\.com db.*4 attempts"
    ):
        cluster.get("BackupConfiguration", "team-a", "db")
    assert kube_api.counts["get"] == 4


def test_an_unreachable_server_is_a_transient_error(tmp_path: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    cluster = KubeCluster(str(path), retry=RetryPolicy(attempts=2, base_delay=0.01), timeout=2)
    with pytest.raises(TransientError, match="list backupsessions"):
        cluster.list("BackupSession")


def test_forbidden_names_the_verb_and_resource(kube_api: KubeAPI) -> None:
    admin = KubeCluster(kube_api.kubeconfig)
    admin.create({"kind": "Secret", "metadata": {"name": "creds", "namespace": "team-a"}, "data": {}})
    operator = KubeCluster(kube_api.operator_kubeconfig)
    for verb, call in (("get", operator.get), ("delete", operator.delete)):  # the operator holds no Secret permission
        with pytest.raises(Forbidden) as err:
            call("Secret", "team-a", "creds")
        message = str(err.value)
        assert message.startswith(f"Forbidden: Secret team-a/creds: cannot {verb} secrets in namespace team-a")
        assert "\n" not in message


def test_injected_forbidden_is_not_retried(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig, retry=FAST)
    kube_api.fail_next(403, count=1)
    with pytest.raises(Forbidden, match="cannot list backupsessions"):
        cluster.list("BackupSession")
    assert kube_api.counts["list"] == 1


def test_the_operator_identity_can_make_every_call_the_loop_and_transfer_make(kube_api: KubeAPI) -> None:
    admin = KubeCluster(kube_api.kubeconfig)
    admin.create(config("db"))
    admin.create(
        {"kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"}, "stringData": {"k": "v"}}
    )
    op = KubeCluster(kube_api.operator_kubeconfig)
    for kind in ("Repository", "BackupConfiguration", "BackupSession", "RestoreSession", "Task", "Function"):
        op.list(kind)
    op.list("AppBinding")
    with pytest.raises(Forbidden):  # neither the loop nor the transfer reads a Secret through the API
        op.get("Secret", "team-a", "s")
    cron = op.create(
        {"kind": "CronJob", "metadata": {"name": "stash-trigger-db", "namespace": "team-a"}, "spec": {}}
    )
    op.replace(dict(cron, spec={"suspend": True}))
    session = op.create({"kind": "BackupSession", "metadata": {"generateName": "db-", "namespace": "team-a"}})
    op.patch_status("BackupSession", "team-a", session["metadata"]["name"], {"phase": "Running"})
    op.patch_status("BackupConfiguration", "team-a", "db", {"phase": "Ready"})
    op.create({"kind": "Job", "metadata": {"name": "stash-backup-x", "namespace": "team-a"}, "spec": {}})
    op.create(
        {"kind": "Event", "metadata": {"generateName": "db.", "namespace": "team-a"}, "reason": "Created"}
    )
    op.delete("Job", "team-a", "stash-backup-x")
    op.delete("BackupSession", "team-a", session["metadata"]["name"])
    list(op.watch(["BackupSession", "CronJob", "Job"], since=None, timeout=0.3))


def test_invalid_objects_raise_invalid(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig)
    with pytest.raises(Invalid, match="name"):
        cluster.create({"kind": "BackupSession", "metadata": {"namespace": "team-a"}})
    with pytest.raises(ValueError, match="unknown kind"):
        cluster.create({"kind": "ConfigMap", "metadata": {"name": "x"}})


def test_one_list_call_per_kind_however_many_objects_exist(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig)
    for n in range(60):
        cluster.create(config(f"db-{n}", ns=f"team-{n % 3}"))
    kube_api.reset_counters()
    assert len(cluster.list("BackupConfiguration")) == 60
    assert len(cluster.list("BackupConfiguration", "team-1")) == 20
    assert kube_api.counts == {"list": 2}


def test_watch_resumes_when_the_server_ends_streams_early_without_losing_events(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig)
    since = cluster.create(config("first"))["metadata"]["resourceVersion"]
    kube_api.end_watch_streams_after(0.4)
    kube_api.reset_counters()

    def writer() -> None:
        for name in ("second", "third", "fourth"):
            time.sleep(0.5)
            cluster.create(config(name))

    thread = threading.Thread(target=writer)
    thread.start()
    events = [
        e.object["metadata"]["name"] for e in cluster.watch(["BackupConfiguration"], since, timeout=2.2)
    ]
    thread.join()
    assert events == ["second", "third", "fourth"]
    assert kube_api.counts["watch"] >= 3


def test_watch_with_an_expired_resource_version_relists(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig)
    old = cluster.create(config("a"))["metadata"]["resourceVersion"]
    cluster.create(config("b"))
    kube_api.expire_watch_history()
    kube_api.reset_counters()
    events = list(cluster.watch(["BackupConfiguration"], since=old, timeout=1.0))
    assert sorted((e.type, e.object["metadata"]["name"]) for e in events) == [("ADDED", "a"), ("ADDED", "b")]
    assert kube_api.counts["list"] == 1


def test_watch_relists_on_a_410_in_the_stream_then_continues(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig)
    since = cluster.create(config("a"))["metadata"]["resourceVersion"]
    kube_api.fail_next(410, count=1, verb="watch")
    seen: list[tuple[str, str]] = []
    for event in cluster.watch(["BackupConfiguration"], since=since, timeout=1.5):
        seen.append((event.type, event.object["metadata"]["name"]))
        if len(seen) == 1:
            cluster.create(config("b"))
    assert seen == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_rides_out_transient_api_errors_until_its_timeout(kube_api: KubeAPI) -> None:
    cluster = KubeCluster(kube_api.kubeconfig, retry=FAST)
    kube_api.fail_next(500, count=6, verb="list")  # the "from now" lookup fails 4 times, then twice more
    kube_api.fail_next(503, count=2, verb="watch")

    def writer() -> None:
        time.sleep(1.2)
        cluster.create(config("late"))

    thread = threading.Thread(target=writer)
    thread.start()
    events = [
        (e.type, e.object["metadata"]["name"]) for e in cluster.watch(["BackupConfiguration"], None, 2.5)
    ]
    thread.join()
    assert events == [("ADDED", "late")]


def test_watch_raises_permanent_errors(kube_api: KubeAPI) -> None:
    operator = KubeCluster(kube_api.operator_kubeconfig)
    with pytest.raises(Forbidden, match="cannot watch secrets"):
        list(operator.watch(["Secret"], since="1", timeout=1.0))


def test_kubeconfig_context_is_selectable(kube_api: KubeAPI, tmp_path: Path) -> None:
    doc = yaml.safe_load(Path(kube_api.kubeconfig).read_text())
    doc["contexts"].append({"name": "broken", "context": {"cluster": "nowhere", "user": "user"}})
    doc["clusters"].append({"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}})
    doc["current-context"] = "broken"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    cluster = KubeCluster(str(path), context="emulator")
    with pytest.raises(NotFound):
        cluster.get("BackupSession", "team-a", "x")


def test_no_kubeconfig_outside_a_cluster_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(StashplanError, match="no kubeconfig"):
        KubeCluster()
