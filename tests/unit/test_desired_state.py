"""Desired state: CronJobs per BackupConfiguration, Jobs per pending session, phase transitions, history."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from stashplan.api import builtin_addons
from stashplan.desired import compute as desired
from stashplan.kinds import MANAGED_LABEL

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def _meta(name: str, ns: str = "demo", **extra: object) -> dict:
    return {"name": name, "namespace": ns, "uid": f"uid-{name}", "generation": 1,
            "creationTimestamp": "2026-11-25T11:00:00Z", **extra}


def base_world() -> dict[str, list[dict]]:
    return {
        "Secret": [{"apiVersion": "v1", "kind": "Secret", "metadata": _meta("repo-secret"),
                    "data": {"RESTIC_PASSWORD": "cGFzcw=="}}],
        "Repository": [{"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
                        "metadata": _meta("repo"),
                        "spec": {"backend": {"local": {"mountPath": "/tmp/repo"}, "storageSecretName": "repo-secret"}}}],
        "AppBinding": [{"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                        "metadata": _meta("pg"),
                        "spec": {"type": "kubedb.com/postgres", "version": "15",
                                 "clientConfig": {"url": "postgresql://127.0.0.1:5432/app"}}}],
        "BackupConfiguration": [{
            "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration", "metadata": _meta("nightly"),
            "spec": {"schedule": "0 3 * * *", "task": {"name": "postgres-backup-15"},
                     "repository": {"name": "repo"},
                     "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                        "name": "pg"}},
                     "retentionPolicy": {"name": "keep", "keepLast": 3, "prune": True},
                     "timeOut": "30m", "backupHistoryLimit": 1}}],
    }


def session(name: str, phase: str | None = None, created: str = "2026-11-25T11:59:00Z", managed: bool = True,
            **status: object) -> dict:
    labels = {MANAGED_LABEL: "stashplan"} if managed else {}
    obj = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupSession",
           "metadata": _meta(name, creationTimestamp=created, labels=labels),
           "spec": {"invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration", "name": "nightly"}}}
    if phase:
        obj["status"] = {"phase": phase, **status}
    return obj


def compute(world: dict[str, list[dict]], now: datetime = NOW) -> desired.Desired:
    return desired.compute(desired.World(world, builtin_addons()), now)


def status_of(out: desired.Desired, kind: str, name: str) -> dict:
    found = [s.status for s in out.statuses if s.kind == kind and s.name == name]
    assert found, f"no status change for {kind} {name}"
    return found[0]


def test_backup_configuration_gets_trigger_cronjob_and_ready_phase() -> None:
    out = compute(base_world())
    [cronjob] = [o for o in out.objects if o["kind"] == "CronJob"]
    assert cronjob["metadata"]["name"] == "stash-trigger-nightly"
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    assert cronjob["spec"]["suspend"] is False
    assert cronjob["metadata"]["ownerReferences"][0]["name"] == "nightly"
    args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["trigger", "nightly"]
    st = status_of(out, "BackupConfiguration", "nightly")
    assert st["phase"] == "Ready"
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "RepositoryFound": "True", "BackendSecretFound": "True", "BackupTargetFound": "True",
        "ValidationPassed": "True", "CronJobCreated": "True"}


def test_paused_config_suspends_cronjob() -> None:
    world = base_world()
    world["BackupConfiguration"][0]["spec"]["paused"] = True
    [cronjob] = [o for o in compute(world).objects if o["kind"] == "CronJob"]
    assert cronjob["spec"]["suspend"] is True


def test_missing_repository_and_secret_make_config_not_ready() -> None:
    world = base_world()
    world["Secret"] = []
    st = status_of(compute(world), "BackupConfiguration", "nightly")
    assert st["phase"] == "NotReady"
    cond = {c["type"]: c for c in st["conditions"]}
    assert cond["BackendSecretFound"]["status"] == "False"
    assert "demo/repo-secret" in cond["BackendSecretFound"]["message"]
    world["Repository"] = []
    st = status_of(compute(world), "BackupConfiguration", "nightly")
    assert {c["type"]: c["status"] for c in st["conditions"]}["RepositoryFound"] == "False"


def test_unknown_task_makes_config_invalid_without_cronjob() -> None:
    world = base_world()
    world["BackupConfiguration"][0]["spec"]["task"] = {"name": "mongodb-backup-4.2"}
    out = compute(world)
    st = status_of(out, "BackupConfiguration", "nightly")
    assert st["phase"] == "Invalid"
    assert not [o for o in out.objects if o["kind"] == "CronJob"]
    assert "mongodb" in {c["type"]: c for c in st["conditions"]}["ValidationPassed"]["message"]


def test_pending_session_gets_job_and_runs_with_deadline() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1")]
    out = compute(world)
    [job] = [o for o in out.objects if o["kind"] == "Job"]
    assert job["metadata"]["name"] == "stash-backup-nightly-1"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    container = job["spec"]["template"]["spec"]["containers"][-1]
    assert container["command"] == ["stashplan"]
    assert "--backupsession=nightly-1" in container["args"]
    st = status_of(out, "BackupSession", "nightly-1")
    assert st["phase"] == "Running"
    assert st["sessionDeadline"] == "2026-11-25T12:29:00Z"


def test_second_session_is_skipped_while_one_runs() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1", "Running"), session("nightly-2", created="2026-11-25T11:59:30Z")]
    world["Job"] = [{"kind": "Job", "metadata": _meta("stash-backup-nightly-1"), "status": {"active": 1}}]
    out = compute(world)
    st = status_of(out, "BackupSession", "nightly-2")
    assert st["phase"] == "Skipped"
    assert {c["type"]: c["reason"] for c in st["conditions"]}["BackupSkipped"] == "SkippedTakingNewBackup"
    assert not [o for o in out.objects if o["kind"] == "Job"]


def test_session_of_not_ready_config_is_skipped() -> None:
    world = base_world()
    world["Secret"] = []
    world["BackupSession"] = [session("nightly-1")]
    assert status_of(compute(world), "BackupSession", "nightly-1")["phase"] == "Skipped"


def test_failed_job_fails_session_with_its_message() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1", "Running", targets=[{"phase": "Running"}])]
    world["Job"] = [{"kind": "Job", "metadata": _meta("stash-backup-nightly-1"),
                     "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                                             "reason": "BackoffLimitExceeded",
                                                             "message": "pg_dump: connection refused"}]}}]
    st = status_of(compute(world), "BackupSession", "nightly-1")
    assert st["phase"] == "Failed"
    assert st["targets"][0]["phase"] == "Failed"


def test_job_succeeding_without_reported_success_is_not_a_success() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1", "Running")]
    world["Job"] = [{"kind": "Job", "metadata": _meta("stash-backup-nightly-1"), "status": {"succeeded": 1}}]
    assert status_of(compute(world), "BackupSession", "nightly-1")["phase"] == "Failed"


def test_deadline_passed_fails_running_session() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1", "Running", sessionDeadline="2026-11-25T12:29:00Z")]
    world["Job"] = [{"kind": "Job", "metadata": _meta("stash-backup-nightly-1"), "status": {"active": 1}}]
    assert not [s for s in compute(world).statuses if s.kind == "BackupSession"]
    st = status_of(compute(world, NOW + timedelta(minutes=30)), "BackupSession", "nightly-1")
    assert st["phase"] == "Failed"
    assert {c["type"]: c["status"] for c in st["conditions"]}["DeadlineExceeded"] == "True"


def test_terminal_sessions_beyond_history_limit_are_deleted_oldest_first() -> None:
    world = base_world()
    world["BackupConfiguration"][0]["spec"]["backupHistoryLimit"] = 2
    world["BackupSession"] = [
        session(f"nightly-{i}", "Succeeded", created=f"2026-11-25T0{i}:00:00Z") for i in range(1, 5)
    ] + [session("by-hand", "Succeeded", created="2026-11-25T00:00:00Z", managed=False)]
    deleted = sorted(d.name for d in compute(world).deletions)
    assert deleted == ["nightly-1", "nightly-2"]  # the hand-made session is not stashplan's to delete


def test_restore_session_gets_restore_job_for_its_target() -> None:
    world = base_world()
    restore = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession", "metadata": _meta("restore-1"),
               "spec": {"repository": {"name": "repo"},
                        "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1",
                                           "kind": "AppBinding", "name": "pg"},
                                   "rules": [{"snapshots": ["latest"]}]}}}
    world["RestoreSession"] = [restore]
    out = compute(world)
    [job] = [o for o in out.objects if o["kind"] == "Job"]
    assert job["metadata"]["name"] == "stash-restore-restore-1"
    args = job["spec"]["template"]["spec"]["containers"][-1]["args"]
    assert "--restoresession=restore-1" in args
    assert "--database=postgres" in args
    assert status_of(out, "RestoreSession", "restore-1")["phase"] == "Running"
    assert any("postgres-restore-15" in n for n in out.notes)


def test_restore_waits_pending_for_missing_target() -> None:
    world = base_world()
    restore = {"kind": "RestoreSession", "apiVersion": "stash.appscode.com/v1beta1", "metadata": _meta("r"),
               "spec": {"repository": {"name": "repo"}, "target": {"ref": {"kind": "AppBinding", "name": "nope"}}}}
    world["RestoreSession"] = [restore]
    st = status_of(compute(world), "RestoreSession", "r")
    assert st["phase"] == "Pending"
    assert "AppBinding demo/nope does not exist" in st["conditions"][0]["message"]


@pytest.mark.parametrize("field,value", [("nodeSelector", {"disk": "ssd"}), ("serviceAccountName", "backup")])
def test_runtime_settings_reach_the_job_pod(field: str, value: object) -> None:
    world = base_world()
    world["BackupConfiguration"][0]["spec"]["runtimeSettings"] = {"pod": {field: value},
                                                                  "container": {"resources": {"limits": {"memory": "256Mi"}}}}
    world["BackupSession"] = [session("nightly-1")]
    [job] = [o for o in compute(world).objects if o["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]
    assert pod[field] == value
    assert pod["containers"][-1]["resources"] == {"limits": {"memory": "256Mi"}}


def test_compute_is_pure() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1")]
    before = copy.deepcopy(world)
    assert compute(world).objects == compute(world).objects
    assert world == before


def test_job_image_is_the_operators_image() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1")]
    out = desired.compute(desired.World(world, builtin_addons()), NOW, desired.Settings(image="registry.example/stashplan:1.2"))
    [job] = [o for o in out.objects if o["kind"] == "Job"]
    [cronjob] = [o for o in out.objects if o["kind"] == "CronJob"]
    assert job["spec"]["template"]["spec"]["containers"][-1]["image"] == "registry.example/stashplan:1.2"
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/stashplan:1.2"


def test_trigger_and_session_pods_run_as_the_namespace_job_identity() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1")]
    out = compute(world)
    by_kind = {o["kind"]: o for o in out.objects}
    assert by_kind["ServiceAccount"]["metadata"] == {"name": "stashplan-job", "namespace": "demo",
                                                     "labels": by_kind["ServiceAccount"]["metadata"]["labels"]}
    assert by_kind["RoleBinding"]["roleRef"]["name"] == "stashplan-job"
    assert by_kind["RoleBinding"]["subjects"] == [{"kind": "ServiceAccount", "name": "stashplan-job", "namespace": "demo"}]
    assert by_kind["Job"]["spec"]["template"]["spec"]["serviceAccountName"] == "stashplan-job"
    assert by_kind["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == "stashplan-job"
    world["BackupConfiguration"][0]["spec"]["runtimeSettings"] = {"pod": {"serviceAccountName": "custom"}}
    [job] = [o for o in compute(world).objects if o["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "custom"


def _cross_namespace_world(policy: dict | None, ns_labels: dict | None = None) -> dict[str, list[dict]]:
    world = base_world()
    repo = world["Repository"][0]
    repo["metadata"] = _meta("repo", ns="backups")
    # The pods of demo receive demo's Secret of the Repository's storageSecretName (only their own namespace's).
    if policy is not None:
        repo["spec"]["usagePolicy"] = {"allowedNamespaces": policy}
    world["BackupConfiguration"][0]["spec"]["repository"] = {"name": "repo", "namespace": "backups"}
    if ns_labels is not None:
        world["Namespace"] = [{"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": "demo", "labels": ns_labels}}]
    return world


def test_repository_of_another_namespace_is_refused_by_default_usage_policy() -> None:
    out = compute(_cross_namespace_world(None))
    st = status_of(out, "BackupConfiguration", "nightly")
    assert st["phase"] == "Invalid"
    message = {c["type"]: c for c in st["conditions"]}["ValidationPassed"]["message"]
    assert message == ("Repository backups/repo does not allow namespace 'demo' "
                       "(spec.usagePolicy.allowedNamespaces.from: Same)")
    assert not [o for o in out.objects if o["kind"] == "CronJob"]


@pytest.mark.parametrize("policy,labels,allowed", [
    ({"from": "All"}, None, True),
    ({"from": "Selector", "selector": {"matchLabels": {"team": "payments"}}}, {"team": "payments"}, True),
    ({"from": "Selector", "selector": {"matchLabels": {"team": "payments"}}}, {"team": "search"}, False),
    ({"from": "Selector", "selector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["demo", "prod"]}]}}, None, True),
    ({"from": "Selector", "selector": {"matchExpressions": [
        {"key": "env", "operator": "NotIn", "values": ["dev"]}, {"key": "team", "operator": "Exists"}]}},
     {"env": "dev", "team": "x"}, False),
])
def test_usage_policy_all_or_selector_shares_a_repository_across_namespaces(
    policy: dict, labels: dict | None, allowed: bool
) -> None:
    out = compute(_cross_namespace_world(policy, labels))
    st = status_of(out, "BackupConfiguration", "nightly")
    assert st["phase"] == ("Ready" if allowed else "Invalid")
    # No RoleBinding outside the invoker's namespace, shared Repository or not.
    assert not [o for o in out.objects if o["kind"] == "RoleBinding" and o["metadata"]["namespace"] != "demo"]
    refusal = ("BackupConfiguration demo/nightly: spec.repository: Repository backups/repo does not allow namespace "
               "'demo'")
    assert any(r.startswith(refusal) for r in out.refusals) is not allowed


def test_a_shared_repository_is_used_with_the_storage_secret_of_the_users_namespace() -> None:
    world = _cross_namespace_world({"from": "All"})
    world["Secret"][0]["metadata"] = _meta("repo-secret", ns="backups")  # only in the Repository's namespace
    st = status_of(compute(world), "BackupConfiguration", "nightly")
    assert st["phase"] == "NotReady"
    cond = {c["type"]: c for c in st["conditions"]}["BackendSecretFound"]
    assert (cond["status"], cond["message"]) == ("False", "Secret demo/repo-secret does not exist")


def test_failed_session_with_retries_left_is_retried_after_the_delay() -> None:
    world = base_world()
    world["BackupConfiguration"][0]["spec"]["retryConfig"] = {"maxRetry": 2, "delay": "10m"}
    failed = session("nightly-1", "Failed")
    failed["spec"]["retryLeft"] = 2
    world["BackupSession"] = [failed]
    # First the retry is scheduled...
    st = status_of(compute(world), "BackupSession", "nightly-1")
    assert st == {"nextRetry": "2026-11-25T12:10:00Z"}
    assert not [o for o in compute(world).objects if o["kind"] == "BackupSession"]
    failed["status"]["nextRetry"] = st["nextRetry"]
    assert not [o for o in compute(world, NOW + timedelta(minutes=9)).objects if o["kind"] == "BackupSession"]
    # ...then, once due, a new session with one retry fewer is created and the failed one marked retried.
    out = compute(world, NOW + timedelta(minutes=10))
    [retry] = [o for o in out.objects if o["kind"] == "BackupSession"]
    assert retry["spec"]["retryLeft"] == 1
    assert retry["spec"]["invoker"]["name"] == "nightly"
    assert status_of(out, "BackupSession", "nightly-1")["retried"] is True
    failed["status"]["retried"] = True
    assert not [o for o in compute(world, NOW + timedelta(minutes=11)).objects if o["kind"] == "BackupSession"]


def test_failed_session_without_retries_left_stays_failed() -> None:
    world = base_world()
    world["BackupSession"] = [session("nightly-1", "Failed")]
    out = compute(world)
    assert not [o for o in out.objects if o["kind"] == "BackupSession"]
    assert not [s for s in out.statuses if s.kind == "BackupSession"]


def _target_in_team_b(world: dict[str, list[dict]]) -> None:
    world["AppBinding"][0]["metadata"] = _meta("pg", ns="team-b")
    world["Secret"].append({"apiVersion": "v1", "kind": "Secret", "metadata": _meta("pg-auth", ns="team-b"),
                            "data": {"password": "c2VjcmV0"}})


def test_a_backup_configuration_whose_target_is_in_another_namespace_is_refused_and_gets_no_binding_there() -> None:
    world = base_world()
    _target_in_team_b(world)
    world["BackupConfiguration"][0]["spec"]["target"]["ref"]["namespace"] = "team-b"
    out = compute(world)
    assert out.refusals == [
        "BackupConfiguration demo/nightly: spec.target.ref.namespace: AppBinding team-b/pg is in another namespace; "
        "a target must be in the BackupConfiguration's own namespace (demo), so that a namespace reaches only its "
        "own objects (Stash's cross-namespace targets are not supported: create the BackupConfiguration in team-b)"]
    assert status_of(out, "BackupConfiguration", "nightly")["phase"] == "Invalid"
    assert not [o for o in out.objects if o["kind"] == "CronJob"]
    assert not [o for o in out.objects if o["metadata"].get("namespace") != "demo"]


def test_a_restore_session_whose_target_is_in_another_namespace_is_refused_and_gets_no_job() -> None:
    world = base_world()
    _target_in_team_b(world)
    world["RestoreSession"] = [{
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession", "metadata": _meta("overwrite"),
        "spec": {"task": {"name": "postgres-restore-15"}, "repository": {"name": "repo"},
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                    "name": "pg", "namespace": "team-b"}, "rules": [{"snapshots": ["latest"]}]}}}]
    world["BackupConfiguration"] = []
    out = compute(world)
    assert out.refusals == [
        "RestoreSession demo/overwrite: spec.target.ref.namespace: AppBinding team-b/pg is in another namespace; "
        "a target must be in the RestoreSession's own namespace (demo), so that a namespace reaches only its "
        "own objects (Stash's cross-namespace targets are not supported: create the RestoreSession in team-b)"]
    assert status_of(out, "RestoreSession", "overwrite")["phase"] == "Invalid"
    assert not [o for o in out.objects if o["kind"] in ("Job", "RoleBinding") and o["metadata"]["name"] != "stashplan-job"]
    assert not [o for o in out.objects if o["metadata"].get("namespace") != "demo"]


@pytest.mark.parametrize("account", ["backup-sa", "default"])
def test_a_custom_service_account_gets_a_role_of_its_own_invokers_objects_only(account: str) -> None:
    world = _cross_namespace_world({"from": "All"})
    world["BackupConfiguration"][0]["spec"]["runtimeSettings"] = {"pod": {"serviceAccountName": account}}
    out = compute(world)
    rbac = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in out.objects
            if o["kind"] in ("Role", "RoleBinding")}
    assert set(rbac) == {("RoleBinding", "demo", "stashplan-job"), ("Role", "demo", "stashplan-job-backup-nightly"),
                         ("RoleBinding", "demo", "stashplan-job-backup-nightly")}
    binding = rbac[("RoleBinding", "demo", "stashplan-job-backup-nightly")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "stashplan-job-backup-nightly"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "demo"}]
    rules = rbac[("Role", "demo", "stashplan-job-backup-nightly")]["rules"]
    assert not [r for r in rules if "secrets" in r["resources"]]
    named = {r["resources"][0]: r.get("resourceNames") for r in rules}
    # Its own configuration and AppBinding only; the shared Repository (another namespace) comes in the pod spec;
    # its WAL receiver's Deployment, which a receiver reads when it stops.
    assert named == {"backupconfigurations": ["nightly"], "appbindings": ["pg"], "backupsessions": None,
                     "backupsessions/status": None, "events": None, "deployments": ["nightly-wal-receive"]}
