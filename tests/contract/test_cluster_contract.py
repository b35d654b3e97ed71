"""The Cluster contract (stashplan/cluster/base.py): one suite, run unchanged on every adapter."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stashplan.cluster.base import Cluster, WatchEvent
from stashplan.cluster.kube import KubeCluster
from stashplan.cluster.local.store import LocalCluster
from stashplan.errors import AlreadyExists, Conflict, FieldConflict, NotFound
from tests.fixtures.kube import KubeAPI
from tests.fixtures.kube_real import RealKube


@pytest.fixture(params=["local", "kube", pytest.param("real", marks=pytest.mark.real_kube)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """local: SQLite; kube: the adapter on the kmock emulator; real: the adapter on kube-apiserver."""
    if request.param == "local":
        impl: Cluster = LocalCluster(tmp_path / "state.db")
    elif request.param == "kube":
        api: KubeAPI = request.getfixturevalue("kube_api")
        impl = KubeCluster(api.kubeconfig)
    else:
        real: RealKube = request.getfixturevalue("real_kube")
        real.reset(NAMESPACES)
        impl = KubeCluster(real.kubeconfig)
    yield impl
    impl.close()


NAMESPACES = ("default", "team-a", "team-b", "team-c", "ns")


@pytest.fixture
def second_client(request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    """Another client of the same cluster, as a second process (the Job beside the loop) would have."""
    param = request.node.callspec.params["cluster"]
    if param == "local":
        impl: Cluster = LocalCluster(tmp_path / "state.db")
    elif param == "kube":
        impl = KubeCluster(request.getfixturevalue("kube_api").kubeconfig)
    else:
        impl = KubeCluster(request.getfixturevalue("real_kube").kubeconfig)
    yield impl
    impl.close()


def job(name: str, ns: str, **meta: object) -> dict:
    """A valid Job a real API server accepts; suspended, so that no controller runs it."""
    pod = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}
    return {"kind": "Job", "metadata": {"name": name, "namespace": ns, **meta},
            "spec": {"suspend": True, "template": {"spec": pod}}}  # fmt: skip


def cronjob(name: str, ns: str, **meta: object) -> dict:
    template = job("", ns)["spec"]
    return {"kind": "CronJob", "metadata": {"name": name, "namespace": ns, **meta},
            "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": template}}}  # fmt: skip


def session(name: str, ns: str = "team-a", labels: dict | None = None, **spec: object) -> dict:
    meta: dict = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"kind": "BackupSession", "metadata": meta, "spec": dict(spec) or {"invoker": invoker("cfg")}}


def config_spec(schedule: str = "*/5 * * * *") -> dict:
    """A BackupConfiguration spec with the fields its CRD schema requires."""
    ref = {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding", "name": "pg"}
    return {"schedule": schedule, "task": {"name": "postgres-backup-15"}, "repository": {"name": "repo"},
            "target": {"ref": ref}, "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}  # fmt: skip


def invoker(name: str) -> dict:
    """A complete invoker (the CRD's schema requires kind and name and defaults apiGroup)."""
    return {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration", "name": name}


def test_create_fills_server_metadata_and_type(cluster: Cluster) -> None:
    body = {"kind": "BackupConfiguration", "metadata": {"name": "db"}, "spec": config_spec()}
    out = cluster.create(body)
    meta = out["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert meta["generation"] == 1
    assert out["apiVersion"] == "stash.appscode.com/v1beta1"
    assert out["kind"] == "BackupConfiguration"
    assert cluster.get("BackupConfiguration", "default", "db") == out
    assert "uid" not in body["metadata"], "create must not modify the caller's dict"


def test_create_of_an_existing_name_raises_already_exists(cluster: Cluster) -> None:
    cluster.create(session("s1"))
    with pytest.raises(AlreadyExists) as err:
        cluster.create(session("s1"))
    assert (err.value.kind, err.value.namespace, err.value.name) == ("BackupSession", "team-a", "s1")


def test_generate_name_gives_distinct_names_with_the_prefix(cluster: Cluster) -> None:
    body = {"kind": "BackupSession", "metadata": {"generateName": "db-", "namespace": "team-a"},
            "spec": {"invoker": invoker("cfg")}}
    names = {cluster.create(body)["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(n.startswith("db-") and len(n) > 3 for n in names)


def test_get_and_delete_of_a_missing_object_raise_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound):
        cluster.get("BackupSession", "team-a", "nope")
    with pytest.raises(NotFound):
        cluster.delete("BackupSession", "team-a", "nope")
    with pytest.raises(NotFound):
        cluster.patch_status("BackupSession", "team-a", "nope", {"phase": "Running"})


def test_list_filters_by_namespace_and_label_equality(cluster: Cluster) -> None:
    cluster.create(session("a", "team-a", {"app": "pg", "tier": "db"}))
    cluster.create(session("b", "team-a", {"app": "redis"}))
    cluster.create(session("c", "team-b", {"app": "pg"}))
    cluster.create(job("a", "team-a", labels={"app": "pg"}))

    def names(objs: list[dict]) -> list[str]:
        return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs)

    assert names(cluster.list("BackupSession")) == ["team-a/a", "team-a/b", "team-b/c"]
    assert names(cluster.list("BackupSession", "team-a")) == ["team-a/a", "team-a/b"]
    assert names(cluster.list("BackupSession", labels={"app": "pg"})) == ["team-a/a", "team-b/c"]
    assert names(cluster.list("BackupSession", "team-a", {"app": "pg", "tier": "db"})) == ["team-a/a"]
    assert cluster.list("BackupSession", "team-c") == []
    assert all(o["kind"] == "BackupSession" for o in cluster.list("BackupSession"))


def test_cluster_scoped_kinds_ignore_the_namespace(cluster: Cluster) -> None:
    out = cluster.create({"kind": "Task", "metadata": {"name": "pg-backup", "namespace": "x"},
                          "spec": {"steps": [{"name": "postgres-backup-15"}]}})  # fmt: skip
    assert "namespace" not in out["metadata"] or not out["metadata"]["namespace"]
    assert cluster.get("Task", "", "pg-backup")["metadata"]["uid"] == out["metadata"]["uid"]
    assert [o["metadata"]["name"] for o in cluster.list("Task")] == ["pg-backup"]


def test_replace_with_the_current_resource_version_succeeds_and_bumps_it(cluster: Cluster) -> None:
    created = cluster.create(session("s1"))
    created["spec"]["invoker"] = invoker("other")
    replaced = cluster.replace(created)
    assert replaced["spec"]["invoker"] == invoker("other")
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert cluster.get("BackupSession", "team-a", "s1")["spec"]["invoker"] == invoker("other")


def test_replace_with_a_stale_resource_version_raises_conflict(cluster: Cluster) -> None:
    created = cluster.create(session("s1"))
    first = dict(created, spec={"invoker": invoker("first")})
    cluster.replace(first)
    stale = dict(created, spec={"invoker": invoker("second")})
    with pytest.raises(Conflict) as err:
        cluster.replace(stale)
    assert err.value.name == "s1"
    assert cluster.get("BackupSession", "team-a", "s1")["spec"]["invoker"] == invoker("first")


def test_replace_without_resource_version_is_unconditional(cluster: Cluster) -> None:
    cluster.create(session("s1"))
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Running"})
    out = cluster.replace(session("s1", invoker=invoker("new")))
    assert out["spec"] == {"invoker": invoker("new")}


def test_replace_of_a_missing_object_raises_not_found(cluster: Cluster) -> None:
    with pytest.raises(NotFound):
        cluster.replace(session("ghost"))


def test_generation_increases_only_when_the_spec_changes(cluster: Cluster) -> None:
    created = cluster.create(session("s1"))
    relabelled = dict(created, metadata=dict(created["metadata"], labels={"a": "b"}))
    same_spec = cluster.replace(relabelled)
    assert same_spec["metadata"]["generation"] == 1
    assert same_spec["metadata"]["labels"] == {"a": "b"}
    changed = cluster.replace(dict(same_spec, spec={"invoker": invoker("x")}))
    assert changed["metadata"]["generation"] == 2


def test_replace_ignores_status_for_kinds_with_a_status_subresource(cluster: Cluster) -> None:
    cluster.create(session("s1"))
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Running"})
    current = cluster.get("BackupSession", "team-a", "s1")
    out = cluster.replace(dict(current, status={"phase": "Succeeded"}))
    assert out["status"] == {"phase": "Running"}
    assert cluster.get("BackupSession", "team-a", "s1")["status"] == {"phase": "Running"}


def test_patch_status_replaces_top_level_keys_and_keeps_the_rest(cluster: Cluster) -> None:
    created = cluster.create(session("s1"))
    first = cluster.patch_status(
        "BackupSession", "team-a", "s1", {"phase": "Running", "targets": [{"ref": {"name": "a"}}]}
    )
    assert int(first["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    second = cluster.patch_status(
        "BackupSession", "team-a", "s1", {"phase": "Succeeded", "targets": [{"phase": "Succeeded"}]}
    )
    assert second["status"] == {"phase": "Succeeded", "targets": [{"phase": "Succeeded"}]}
    assert second["spec"] == created["spec"]
    assert second["metadata"]["generation"] == 1
    assert cluster.get("BackupSession", "team-a", "s1")["status"]["phase"] == "Succeeded"


def test_a_final_session_phase_never_changes(cluster: Cluster) -> None:
    cluster.create(session("s1"))
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Failed"})
    with pytest.raises(Conflict, match="final phase never changes"):
        cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Succeeded"})
    # other keys may still be written, and the same phase again (a condition added after the fact)
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Failed", "sessionDuration": "1s"})
    assert cluster.get("BackupSession", "team-a", "s1")["status"] == {"phase": "Failed", "sessionDuration": "1s"}


def test_patch_status_with_a_stale_resource_version_raises_conflict_and_writes_nothing(cluster: Cluster) -> None:
    created = cluster.create(session("s1"))
    read = created["metadata"]["resourceVersion"]
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Running"})  # someone else wrote since
    with pytest.raises(Conflict):
        cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Skipped"}, resource_version=read)
    assert cluster.get("BackupSession", "team-a", "s1")["status"]["phase"] == "Running"
    current = cluster.get("BackupSession", "team-a", "s1")["metadata"]["resourceVersion"]
    done = cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Skipped"}, resource_version=current)
    assert done["status"]["phase"] == "Skipped"


def test_racing_final_phases_one_wins_and_it_sticks(cluster: Cluster, second_client: Cluster) -> None:
    """The loop (deadline: Failed) and the Job (Succeeded) write at once: exactly one final phase is ever seen."""
    cluster.create(session("s1"))
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Running"})
    outcomes: dict[str, str] = {}

    def write(client: Cluster, phase: str) -> None:
        try:
            client.patch_status("BackupSession", "team-a", "s1", {"phase": phase})
            outcomes[phase] = "written"
        except Conflict:
            outcomes[phase] = "refused"

    threads = [threading.Thread(target=write, args=(c, p))
               for c, p in ((cluster, "Failed"), (second_client, "Succeeded"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    final = cluster.get("BackupSession", "team-a", "s1")["status"]["phase"]
    assert sorted(outcomes.values()) == ["refused", "written"], outcomes
    assert outcomes[final] == "written"


def test_delete_removes_the_object(cluster: Cluster) -> None:
    cluster.create(session("s1"))
    cluster.delete("BackupSession", "team-a", "s1")
    with pytest.raises(NotFound):
        cluster.get("BackupSession", "team-a", "s1")
    assert cluster.list("BackupSession") == []


def test_delete_garbage_collects_dependants_through_owner_references(cluster: Cluster) -> None:
    config = cluster.create(
        {"kind": "BackupConfiguration", "metadata": {"name": "db", "namespace": "ns"}, "spec": config_spec()}
    )
    owner = {"apiVersion": config["apiVersion"], "kind": "BackupConfiguration", "name": "db",
             "uid": config["metadata"]["uid"], "controller": True}  # fmt: skip
    cron = cluster.create(cronjob("stash-trigger-db", "ns", ownerReferences=[owner]))
    cron_owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": "stash-trigger-db",
                  "uid": cron["metadata"]["uid"]}  # fmt: skip
    cluster.create(job("run-1", "ns", ownerReferences=[cron_owner]))
    cluster.create(job("unrelated", "ns"))

    cluster.delete("BackupConfiguration", "ns", "db")

    deadline = time.monotonic() + 30  # a real garbage collector acts within seconds
    while time.monotonic() < deadline and (cluster.list("CronJob") or len(cluster.list("Job")) > 1):
        time.sleep(0.05)
    assert cluster.list("CronJob") == []
    assert [j["metadata"]["name"] for j in cluster.list("Job")] == ["unrelated"]


def test_secret_string_data_is_stored_as_base64_data(cluster: Cluster) -> None:
    out = cluster.create(
        {"kind": "Secret", "metadata": {"name": "creds", "namespace": "ns"}, "stringData": {"password": "pw"}}
    )
    stored = cluster.get("Secret", "ns", "creds")
    assert stored["data"] == {"password": "cHc="}
    assert "stringData" not in stored
    assert out["data"] == {"password": "cHc="}


def collect(cluster: Cluster, kinds: list[str], since: str | None, timeout: float) -> list[WatchEvent]:
    return list(cluster.watch(kinds, since=since, timeout=timeout))


def test_watch_yields_events_after_since_for_the_requested_kinds_only(cluster: Cluster) -> None:
    first = cluster.create(session("s1"))
    since = first["metadata"]["resourceVersion"]
    cluster.patch_status("BackupSession", "team-a", "s1", {"phase": "Running"})
    cluster.create(job("j", "team-a"))
    cluster.create(session("s2"))
    cluster.delete("BackupSession", "team-a", "s1")

    events = collect(cluster, ["BackupSession"], since, timeout=1.0)

    seen = [(e.type, e.object["metadata"]["name"]) for e in events]
    assert seen == [("MODIFIED", "s1"), ("ADDED", "s2"), ("DELETED", "s1")]
    assert events[0].object["status"] == {"phase": "Running"}
    assert all(e.object["kind"] == "BackupSession" for e in events)
    rvs = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(since)


def test_watch_merges_several_kinds(cluster: Cluster) -> None:
    start = cluster.create(session("s0"))["metadata"]["resourceVersion"]
    cluster.create(session("s1"))
    cluster.create(job("j", "team-a"))
    cluster.create({"kind": "Secret", "metadata": {"name": "x", "namespace": "team-a"}})
    events = collect(cluster, ["BackupSession", "Job"], start, timeout=1.0)
    # (a real Job controller may also modify the Job: only the additions are this test's)
    assert sorted((e.object["kind"], e.type) for e in events if e.type == "ADDED") == [
        ("BackupSession", "ADDED"),
        ("Job", "ADDED"),
    ]
    assert {e.object["kind"] for e in events} == {"BackupSession", "Job"}


def test_watch_from_now_sees_only_later_changes_and_ends_after_the_timeout(cluster: Cluster) -> None:
    cluster.create(session("before"))

    def later() -> None:
        time.sleep(0.4)
        cluster.create(session("after"))

    writer = threading.Thread(target=later)
    started = time.monotonic()
    writer.start()
    events = collect(cluster, ["BackupSession"], None, timeout=1.5)
    elapsed = time.monotonic() - started
    writer.join()
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [("ADDED", "after")]
    assert 1.0 <= elapsed < 6.0


def applied_config(schedule: str = "*/5 * * * *", labels: dict | None = None, **spec: object) -> dict:
    meta: dict = {"name": "db", "namespace": "ns", "labels": labels or {"app": "pg"}}
    return {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration", "metadata": meta,
            "spec": {**config_spec(schedule), **spec}}  # fmt: skip


def test_apply_removes_the_fields_it_applied_and_no_longer_asks_for(cluster: Cluster) -> None:
    first = cluster.apply(applied_config(labels={"app": "pg", "tier": "db"}, paused=True))
    assert first["spec"]["paused"] is True and first["metadata"]["generation"] == 1
    again = cluster.apply(applied_config())
    stored = cluster.get("BackupConfiguration", "ns", "db")
    assert "paused" not in stored["spec"], "a field stashplan applied and the manifest dropped must go"
    assert stored["metadata"]["labels"] == {"app": "pg"}
    assert stored["spec"]["schedule"] == "*/5 * * * *" and stored["metadata"]["uid"] == first["metadata"]["uid"]
    assert stored["metadata"]["generation"] == 2 == again["metadata"]["generation"]
    managers = {(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]}
    assert ("stashplan", "Apply") in managers


def test_an_apply_that_changes_nothing_writes_nothing(cluster: Cluster) -> None:
    first = cluster.apply(applied_config())
    again = cluster.apply(applied_config())
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == 1


def test_apply_never_overwrites_a_field_another_manager_owns(cluster: Cluster) -> None:
    cluster.apply(applied_config("0 1 * * *"), field_manager="ops-team")
    with pytest.raises(FieldConflict) as err:
        cluster.apply(applied_config("*/5 * * * *"))
    assert ("spec.schedule", "ops-team") in err.value.fields
    assert (err.value.kind, err.value.namespace, err.value.name) == ("BackupConfiguration", "ns", "db")
    assert cluster.get("BackupConfiguration", "ns", "db")["spec"]["schedule"] == "0 1 * * *"
    # Fields both set to the same value are shared, not in conflict: the same schedule applies cleanly.
    shared = cluster.apply(applied_config("0 1 * * *"))
    assert shared["spec"]["schedule"] == "0 1 * * *"


def test_apply_with_a_stale_resource_version_raises_conflict(cluster: Cluster) -> None:
    first = cluster.apply(applied_config())
    cluster.apply(applied_config("0 2 * * *"))
    stale = applied_config("0 3 * * *")
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    with pytest.raises(Conflict):
        cluster.apply(stale)
    assert cluster.get("BackupConfiguration", "ns", "db")["spec"]["schedule"] == "0 2 * * *"


def test_apply_takes_over_what_an_earlier_stashplan_wrote_without_applying(cluster: Cluster) -> None:
    """Objects written by create/replace before stashplan applied server-side (its managed-by label on them): the
    first apply neither conflicts with those writes nor keeps a field the manifest dropped."""
    legacy = applied_config("0 1 * * *", labels={"app.kubernetes.io/managed-by": "stashplan"}, paused=True)
    cluster.create(legacy)
    out = cluster.apply(applied_config("0 2 * * *", labels={"app.kubernetes.io/managed-by": "stashplan"}))
    stored = cluster.get("BackupConfiguration", "ns", "db")
    assert stored["spec"]["schedule"] == "0 2 * * *" == out["spec"]["schedule"]
    assert "paused" not in stored["spec"]


def deployment(name: str, ns: str, replicas: int = 1, **meta: object) -> dict:
    """A valid apps/v1 Deployment a real API server accepts (a BackupConfiguration's WAL receiver is one)."""
    labels = {"app": name}
    pod = {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1000"]}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, **meta},
            "spec": {"replicas": replicas, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}  # fmt: skip


def test_deployments_are_applied_scaled_given_a_status_and_garbage_collected_with_their_owner(
    cluster: Cluster,
) -> None:
    owner = cluster.create({"kind": "BackupConfiguration", "metadata": {"name": "db", "namespace": "team-a"},
                            "spec": config_spec()})
    ref = {"apiVersion": owner["apiVersion"], "kind": "BackupConfiguration", "name": "db",
           "uid": owner["metadata"]["uid"], "controller": True}
    made = cluster.apply(deployment("db-wal-receive", "team-a", ownerReferences=[ref]))
    assert made["apiVersion"] == "apps/v1" and made["spec"]["replicas"] == 1
    scaled = cluster.apply(deployment("db-wal-receive", "team-a", replicas=0, ownerReferences=[ref]))
    assert scaled["spec"]["replicas"] == 0 and scaled["metadata"]["generation"] > made["metadata"]["generation"]
    status = {"replicas": 0, "readyReplicas": 0,
              "conditions": [{"type": "Available", "status": "False", "reason": "ScaledToZero"}]}
    found = cluster.patch_status("Deployment", "team-a", "db-wal-receive", status)  # (a deployment controller
    assert found["status"]["conditions"][0]["reason"] == "ScaledToZero"  # may write its own status after it)
    cluster.delete("BackupConfiguration", "team-a", "db")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and cluster.list("Deployment", "team-a"):
        time.sleep(0.2)
    assert cluster.list("Deployment", "team-a") == []
