"""Against a real control plane (make kube-e2e): `stashplan install` accepted, the operator as the
`stashplan` ServiceAccount held to its ClusterRole, a scheduled PostgreSQL backup through the real CronJob,
Job and garbage-collector controllers and the test kubelet into the S3 server, a restore compared, and two
operator replicas handing over the Lease."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from stashplan.api import builtin_addons
from stashplan.cluster.kube import KubeCluster
from stashplan.errors import Forbidden
from stashplan.kinds import KINDS
from stashplan.operator.iteration import run_once
from tests.fixtures.databases import PgDatabase
from tests.fixtures.kube_real import RealKube
from tests.fixtures.pushgateway import read_metrics
from tests.fixtures.s3 import S3Bucket
from tests.kube.controlplane import free_port
from tests.kube.rest import ApiError, Rest

pytestmark = pytest.mark.real_kube

SYSTEM = "stashplan-system"
APPBINDING = "appcatalog.appscode.com/v1alpha1"
_CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


def collection(doc: dict) -> str:
    """The REST collection path of a manifest (the kinds `stashplan install` prints)."""
    group_version = doc["apiVersion"]
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    ns = "" if doc["kind"] in _CLUSTER_SCOPED else f"/namespaces/{doc['metadata']['namespace']}"
    return f"{base}{ns}/{doc['kind'].lower()}s"


def apply(rest: Rest, doc: dict) -> dict:
    """Create, or replace what is there (kubectl apply's effect for a manifest it owns)."""
    path = collection(doc)
    try:
        return rest.post(path, doc)
    except ApiError as exc:
        if exc.status != 409:
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} refused: {exc}") from None
    current = rest.get(f"{path}/{doc['metadata']['name']}")
    body = dict(doc, metadata=dict(doc["metadata"], resourceVersion=current["metadata"]["resourceVersion"]))
    return rest.put(f"{path}/{doc['metadata']['name']}", body)


def token_kubeconfig(real: RealKube, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of ServiceAccount namespace/account (nothing else)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    token = real.rest.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", request)
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
           "clusters": [{"name": "c", "cluster": {"server": real.plane.url,
                                                  "certificate-authority": str(real.plane.pki.ca)}}],
           "users": [{"name": account, "user": {"token": token["status"]["token"]}}],
           "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}]}  # fmt: skip
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def installed(real_kube: RealKube, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """`stashplan install` applied as printed; returns its documents."""
    out = subprocess.run([sys.executable, "-m", "stashplan", "install", "--namespace", SYSTEM,
                          "--image", "stashplan:e2e"], check=True, capture_output=True, text=True)  # fmt: skip
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    for doc in docs:
        apply(real_kube.rest, doc)
    return docs


@pytest.fixture
def operator_kubeconfig(real_kube: RealKube, installed: list[dict], tmp_path: Path) -> str:
    return str(token_kubeconfig(real_kube, SYSTEM, "stashplan", tmp_path / "operator.kubeconfig"))


def test_install_manifests_are_accepted_and_every_crd_is_established(
    real_kube: RealKube, installed: list[dict]
) -> None:
    kinds = sorted({d["kind"] for d in installed})
    assert {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Deployment", "ServiceAccount"} <= set(kinds)
    for doc in installed:
        name = doc["metadata"]["name"]
        stored = real_kube.rest.get(f"{collection(doc)}/{name}")
        assert stored["metadata"]["uid"], (doc["kind"], name)
        if doc["kind"] == "CustomResourceDefinition":
            conds = {c["type"]: c["status"] for c in stored["status"]["conditions"]}
            assert conds["Established"] == "True" and conds["NamesAccepted"] == "True", (name, conds)
        if doc["kind"] == "ClusterRole":
            assert stored["rules"] == doc["rules"], name


def test_the_operator_identity_is_held_to_its_clusterrole_by_the_real_authorizer(
    real_kube: RealKube, operator_kubeconfig: str, tmp_path: Path
) -> None:
    ns = "e2e-rbac"
    real_kube.reset((ns,))
    admin, operator = KubeCluster(real_kube.kubeconfig), KubeCluster(operator_kubeconfig)
    try:
        admin.create({"kind": "BackupConfiguration", "metadata": {"name": "db", "namespace": ns},
                      "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"},
                               "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "pg"}},
                               "task": {"name": "postgres-backup-15"},
                               "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}})  # fmt: skip
        assert [c["metadata"]["name"] for c in operator.list("BackupConfiguration", ns)] == ["db"]
        with pytest.raises(Forbidden) as err:
            operator.create({"kind": "Secret", "metadata": {"name": "stolen", "namespace": ns}, "data": {}})
        assert "cannot create secrets in namespace e2e-rbac" in str(err.value)
        assert "system:serviceaccount:stashplan-system:stashplan" in str(err.value)
    finally:
        admin.close()
        operator.close()
    # the same refusal through the CLI: one line on stderr, non-zero exit, naming the object
    manifest = tmp_path / "secret.yaml"
    manifest.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret",
                                        "metadata": {"name": "stolen", "namespace": ns}, "data": {}}))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "stashplan", "apply", "--cluster", "kube", "--kubeconfig",
                           operator_kubeconfig, "-f", str(manifest), "--auto-approve"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "forbidden" in errors[0].lower() and "stolen" in errors[0], done.stderr


def pod_logs(real: RealKube, namespace: str) -> str:
    """The tails of the logs of every pod the kubelet ran in `namespace` (for failure messages)."""
    parts = []
    for log in sorted(real.kubelet.workdir.glob(f"{namespace}_*/*.log")):
        parts.append(f"--- {log.parent.name}/{log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
    return "\n".join(parts)


@pytest.fixture
def operators(real_kube: RealKube, installed: list[dict]) -> Iterator[Callable[[list[str], str], None]]:
    """Start operator replicas as Pods made from the installed Deployment's template (run by the kubelet
    as the `stashplan` ServiceAccount); each gets its own health port, as pods share the host's loopback."""
    started: list[str] = []
    deploy = next(d for d in installed if d["kind"] == "Deployment" and d["metadata"]["name"] == "stashplan")

    def start(names: list[str], pushgateway_url: str) -> None:
        for name in names:
            template = yaml.safe_load(yaml.safe_dump(deploy["spec"]["template"]))
            container = template["spec"]["containers"][0]
            container["args"] = [a for a in container["args"] if not a.startswith("--health-port")]
            container["args"] += [f"--health-port={free_port()}", "--interval=2"]
            for env in container["env"]:
                if env["name"] == "PROMETHEUS_PUSHGATEWAY_URL":
                    env["value"] = pushgateway_url
            pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                   "metadata": {"name": name, "namespace": SYSTEM, "labels": template["metadata"]["labels"]}}  # fmt: skip
            real_kube.rest.post(f"/api/v1/namespaces/{SYSTEM}/pods", pod)
            started.append(name)

    yield start
    for name in started:
        try:
            real_kube.rest.delete(f"/api/v1/namespaces/{SYSTEM}/pods/{name}", gracePeriodSeconds="0")
        except ApiError:
            pass
    try:
        real_kube.rest.delete(f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM}/leases/stashplan-operator")
    except ApiError:
        pass
    real_kube.wait_for("operator processes stopped",
                       lambda: not any(r.namespace == SYSTEM for r in real_kube.kubelet.runs.values()))  # fmt: skip


def stash_objects(ns: str, db: PgDatabase, bucket: S3Bucket, schedule: str) -> list[dict]:
    def appbinding(name: str, url: str) -> dict:
        return {"kind": "AppBinding", "metadata": {"name": name, "namespace": ns},
                "spec": {"type": "kubedb.com/postgres", "version": "15", "clientConfig": {"url": url},
                         "secret": {"name": "pg-auth"}}}  # fmt: skip

    restore_url = db.url.replace(f"/{db.name}?", f"/{db.name}_restored?")
    return [
        {"kind": "Secret", "metadata": {"name": "pg-auth", "namespace": ns},
         "stringData": {"username": "postgres", "password": ""}},
        appbinding("app-pg", db.url),
        appbinding("restored-pg", restore_url),
        {"kind": "Secret", "metadata": {"name": "s3-repo-secret", "namespace": ns},
         "stringData": {"RESTIC_PASSWORD": "kube-e2e-password", **bucket.endpoint.env()}},
        {"kind": "Repository", "metadata": {"name": "s3-repo", "namespace": ns},
         "spec": {"backend": {"s3": {"endpoint": bucket.endpoint.url, "bucket": bucket.name, "prefix": "pg"},
                              "storageSecretName": "s3-repo-secret"}}},
        {"kind": "BackupConfiguration", "metadata": {"name": "app-pg-backup", "namespace": ns},
         "spec": {"schedule": schedule, "task": {"name": "postgres-backup-15"},
                  "repository": {"name": "s3-repo"},
                  "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "app-pg"}},
                  "retentionPolicy": {"name": "keep-last-3", "keepLast": 3, "prune": True}, "timeOut": "5m"}},
    ]  # fmt: skip


def status_of(cluster: KubeCluster, kind: str, ns: str, name: str) -> dict:
    return dict(cluster.get(kind, ns, name).get("status") or {})


def finished(cluster: KubeCluster, kind: str, ns: str, name: str) -> bool:
    return status_of(cluster, kind, ns, name).get("phase") in ("Succeeded", "Failed")


ITEMS = "SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items"


def test_a_scheduled_backup_runs_through_the_real_controllers_and_restores_into_another_database(
    real_kube: RealKube, operators: Callable[[list[str], str], None], pg_database: Callable[[], PgDatabase],
    s3_bucket: S3Bucket, pushgateway: str,
) -> None:
    ns = "e2e-backup"
    real_kube.reset((ns,))
    db = pg_database()
    db.sql("CREATE TABLE items(id int primary key, name text); "
           "INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g")  # fmt: skip
    expected = db.sql(ITEMS)
    admin = KubeCluster(real_kube.kubeconfig)
    try:
        for obj in stash_objects(ns, db, s3_bucket, "* * * * *"):
            admin.create(obj)
        operators(["stashplan-a", "stashplan-b"], pushgateway)
        cron = real_kube.wait_for("the operator creates the trigger CronJob",
                                  lambda: admin.list("CronJob", ns), timeout=90)  # fmt: skip
        assert [c["metadata"]["name"] for c in cron] == ["stash-trigger-app-pg-backup"], pod_logs(real_kube, SYSTEM)
        # the real CronJob controller fires at the next minute; the trigger pod creates the session
        sessions = real_kube.wait_for("a BackupSession from the CronJob's trigger Job",
                                      lambda: admin.list("BackupSession", ns), timeout=150)  # fmt: skip
        name = sessions[0]["metadata"]["name"]  # type: ignore[index]
        config = admin.get("BackupConfiguration", ns, "app-pg-backup")
        admin.replace(dict(config, spec=dict(config["spec"], paused=True)))  # no second run
        real_kube.wait_for(f"BackupSession {name} finishes",
                           lambda: finished(admin, "BackupSession", ns, name), timeout=240)  # fmt: skip
        status = status_of(admin, "BackupSession", ns, name)
        assert status["phase"] == "Succeeded", (status, pod_logs(real_kube, ns))
        jobs = [j for j in admin.list("Job", ns) if j["metadata"]["name"].startswith("stash-backup-")]
        assert [j["metadata"]["name"] for j in jobs] == [f"stash-backup-{name}"]
        # the real Job controller turns the pod's Succeeded status into the Job's
        real_kube.wait_for("the backup Job completes",
                           lambda: status_of(admin, "Job", ns, f"stash-backup-{name}").get("succeeded") == 1)  # fmt: skip
        repo = status_of(admin, "Repository", ns, "s3-repo")
        assert repo["snapshotCount"] == 1 and repo["integrity"] is True, repo
        keys = [o["Key"] for o in s3_bucket.endpoint.client().list_objects_v2(Bucket=s3_bucket.name)["Contents"]]
        assert any(k.startswith("pg/") for k in keys)
        events = real_kube.rest.get(f"/api/v1/namespaces/{ns}/events")["items"]
        about = {(e["involvedObject"]["kind"], e["reason"]) for e in events}
        assert any(kind == "BackupSession" for kind, _ in about), about
        metrics = read_metrics(pushgateway)
        assert any(line.startswith("stash_backup_session_success{") and line.endswith(" 1")
                   for line in metrics.splitlines()), metrics[-2000:]  # fmt: skip

        db.sql(f"CREATE DATABASE {db.name}_restored")
        restored = PgDatabase(f"{db.name}_restored")
        admin.create({"kind": "RestoreSession", "metadata": {"name": "restore-1", "namespace": ns},
                      "spec": {"task": {"name": "postgres-restore-15"}, "repository": {"name": "s3-repo"},
                               "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding",
                                                  "name": "restored-pg"},
                                          "rules": [{"snapshots": ["latest"]}]}}})  # fmt: skip
        real_kube.wait_for("the RestoreSession finishes",
                           lambda: finished(admin, "RestoreSession", ns, "restore-1"), timeout=180)  # fmt: skip
        restore = status_of(admin, "RestoreSession", ns, "restore-1")
        assert restore["phase"] == "Succeeded", (restore, pod_logs(real_kube, ns))
        assert restored.sql(ITEMS) == expected
    finally:
        admin.close()
        db.sql(f"DROP DATABASE IF EXISTS {db.name}_restored WITH (FORCE)")


def lease_holder(real: RealKube) -> str:
    try:
        lease = real.rest.get(f"/apis/coordination.k8s.io/v1/namespaces/{SYSTEM}/leases/stashplan-operator")
    except ApiError:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_a_standby_replica_takes_over_when_the_leader_is_killed_without_duplicate_jobs(
    real_kube: RealKube, operators: Callable[[list[str], str], None], pg_database: Callable[[], PgDatabase],
    s3_bucket: S3Bucket, pushgateway: str,
) -> None:
    ns = "e2e-leader"
    real_kube.reset((ns,))
    db = pg_database()
    db.sql("CREATE TABLE items(id int primary key, name text); INSERT INTO items VALUES (1, 'one')")
    admin = KubeCluster(real_kube.kubeconfig)
    try:
        for obj in stash_objects(ns, db, s3_bucket, "0 0 1 1 *"):
            admin.create(obj)
        operators(["stashplan-a", "stashplan-b"], pushgateway)
        leader = str(real_kube.wait_for("a replica holds the Lease", lambda: lease_holder(real_kube), timeout=60))
        [standby] = {"stashplan-a", "stashplan-b"} - {leader}
        real_kube.wait_for("the trigger CronJob", lambda: admin.list("CronJob", ns), timeout=60)
        # kill the leader: a forced delete, the kubelet SIGKILLs it, so the Lease is not released
        real_kube.rest.delete(f"/api/v1/namespaces/{SYSTEM}/pods/{leader}", gracePeriodSeconds="0")
        real_kube.wait_for(f"{standby} takes the Lease over", lambda: lease_holder(real_kube) == standby, timeout=60)
        # `kubectl create job --from=cronjob/...`: a trigger Job made from the CronJob's template, by hand
        cron = admin.get("CronJob", ns, "stash-trigger-app-pg-backup")
        template = cron["spec"]["jobTemplate"]
        admin.create({"kind": "Job", "metadata": {
            "name": "manual-trigger", "namespace": ns, "labels": (template.get("metadata") or {}).get("labels", {}),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cron["metadata"]["name"],
                                 "uid": cron["metadata"]["uid"], "controller": True}]},
            "spec": template["spec"]})  # fmt: skip
        sessions = real_kube.wait_for("the manual trigger's BackupSession",
                                      lambda: admin.list("BackupSession", ns), timeout=90)  # fmt: skip
        name = sessions[0]["metadata"]["name"]  # type: ignore[index]
        real_kube.wait_for(f"BackupSession {name} finishes",
                           lambda: finished(admin, "BackupSession", ns, name), timeout=180)  # fmt: skip
        assert status_of(admin, "BackupSession", ns, name)["phase"] == "Succeeded", pod_logs(real_kube, ns)
        assert [s["metadata"]["name"] for s in admin.list("BackupSession", ns)] == [name]
        backup_jobs = [j["metadata"]["name"] for j in admin.list("Job", ns) if j["metadata"]["name"] != "manual-trigger"]
        assert backup_jobs == [f"stash-backup-{name}"]

        def pod_phases() -> list[str]:
            selector = f"job-name=stash-backup-{name}"
            pods = real_kube.rest.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
            return [p["status"].get("phase", "") for p in pods]

        real_kube.wait_for("the backup pod ends", lambda: pod_phases() != ["Running"])
        assert pod_phases() == ["Succeeded"]
    finally:
        admin.close()


def test_deleting_a_backup_configuration_lets_the_garbage_collector_remove_its_cronjob(
    real_kube: RealKube, operator_kubeconfig: str
) -> None:
    ns = "e2e-gc"
    real_kube.reset((ns,))
    admin, operator = KubeCluster(real_kube.kubeconfig), KubeCluster(operator_kubeconfig)
    try:
        admin.create({"kind": "Repository", "metadata": {"name": "repo", "namespace": ns},
                      "spec": {"backend": {"local": {"mountPath": "/tmp/r"}, "storageSecretName": "s"}}})  # fmt: skip
        admin.create({"kind": "Secret", "metadata": {"name": "s", "namespace": ns},
                      "stringData": {"RESTIC_PASSWORD": "pw"}})  # fmt: skip
        admin.create({"kind": "BackupConfiguration", "metadata": {"name": "db", "namespace": ns},
                      "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"},
                               "target": {"ref": {"apiVersion": APPBINDING, "kind": "AppBinding", "name": "pg"}},
                               "task": {"name": "postgres-backup-15"},
                               "retentionPolicy": {"name": "keep-1", "keepLast": 1, "prune": True}}})  # fmt: skip
        run_once(operator, addons=builtin_addons())
        assert [c["metadata"]["name"] for c in admin.list("CronJob", ns)] == ["stash-trigger-db"]
        admin.delete("BackupConfiguration", ns, "db")
        real_kube.wait_for("the garbage collector deletes the CronJob", lambda: not admin.list("CronJob", ns), timeout=60)
    finally:
        admin.close()
        operator.close()


def test_applied_manifests_and_the_operators_objects_plan_no_changes_once_the_server_has_defaulted_them(
    real_kube: RealKube, operator_kubeconfig: str, pg_database: Callable[[], PgDatabase], s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    ns = "e2e-plan"
    real_kube.reset((ns,))
    manifests = tmp_path / "backup.yaml"
    docs = stash_objects(ns, pg_database(), s3_bucket, "0 3 * * *")
    for doc in docs:
        doc["apiVersion"] = KINDS[doc["kind"]].api_version
    manifests.write_text(yaml.safe_dump_all(docs))
    cli = [sys.executable, "-m", "stashplan"]
    where = ["--cluster", "kube", "--kubeconfig", real_kube.kubeconfig, "-f", str(manifests)]
    applied = subprocess.run([*cli, "apply", *where, "--auto-approve"], capture_output=True, text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    operator = KubeCluster(operator_kubeconfig)
    try:
        run_once(operator, addons=builtin_addons())
        again = run_once(operator, addons=builtin_addons())
        assert not again.result.applied, [(c.address, c.reason) for c in again.result.applied]
    finally:
        operator.close()
    planned = subprocess.run([*cli, "plan", *where, "-n", ns, "--detailed-exitcode"], capture_output=True, text=True)
    assert planned.returncode == 0, planned.stdout + planned.stderr
