"""Folders of Stash's own documentation, planned as a Stash user would: each works, or is refused at plan time
with one line per kind or field (naming the object, the field and why) while the rest of the folder plans."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from stashplan.cli import app

DOCS = Path(__file__).resolve().parents[1] / "data" / "stash-docs"
runner = CliRunner()


def plan(folder: str, tmp_path: Path, *extra: str) -> tuple[int, str, list[str]]:
    result = runner.invoke(app, ["plan", "-f", str(DOCS / folder), "--state", str(tmp_path / "s.db"), *extra])
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    return result.exit_code, result.output, errors


def test_mongodb_is_refused_in_the_plan_output_not_only_in_a_status(tmp_path: Path) -> None:
    code, out, errors = plan("05-mongodb-standalone", tmp_path)
    assert code == 1, out
    assert ("error: BackupConfiguration demo/sample-mongodb-backup: spec.task: Task 'mongodb-backup-4.2.3' "
            "(spec.task.name): database 'mongodb' has no built-in addon; supported: postgres, mysql, mariadb, "
            "redis, sqlite") in errors


def test_backupbatch_is_refused_in_one_line_and_the_rest_still_plans(tmp_path: Path) -> None:
    code, out, errors = plan("10-backupbatch", tmp_path)
    assert code == 1, out
    assert [e for e in errors if "BackupBatch" in e] == [
        f"error: {DOCS}/10-backupbatch/backupbatch.yaml: BackupBatch/wordpress-backup: kind: stashplan runs one "
        "target per BackupConfiguration; split the members into BackupConfigurations"]
    assert "+ AppBinding/demo/wordpress-db will be created" in out


def test_workload_targets_are_refused_naming_the_field(tmp_path: Path) -> None:
    code, out, errors = plan("12-concepts-backupconfiguration", tmp_path)
    assert code == 1, out
    assert any(e.endswith("BackupConfiguration/demo-backup: spec.target.ref.kind: refused: only AppBinding "
                          "(database) targets run in stashplan; workload and volume targets need Stash's sidecar")
               for e in errors), errors


def test_a_guide_adapted_to_an_appbinding_refuses_each_field_it_cannot_honour(tmp_path: Path) -> None:
    code, out, errors = plan("12c-concepts-bc-adapted-to-appbinding", tmp_path)
    assert code == 1, out
    fields = {e.split(": ")[3] for e in errors}
    assert {"spec.target.paths", "spec.target.exclude", "spec.target.volumeMounts"} <= fields
    assert "+ AppBinding/demo/app-db will be created" in out  # the rest of the folder still plans
    saved = tmp_path / "plan.json"
    code, _, _ = plan("12c-concepts-bc-adapted-to-appbinding", tmp_path, "--out", str(saved))
    assert code == 1 and not saved.exists()  # a refused plan is never saved for apply


def test_apply_leaves_out_only_what_is_refused_and_exits_1(tmp_path: Path) -> None:
    """One refused object never blocks the others (issue 22): the BackupBatch is refused with an error line and
    left out, the rest of the folder is applied, and apply exits 1."""
    state = str(tmp_path / "s.db")
    result = runner.invoke(app, ["apply", "-f", str(DOCS / "10-backupbatch"), "--state", state, "--auto-approve"])
    assert result.exit_code == 1
    assert "error:" in result.output and "BackupBatch" in result.output
    assert "error(s) above: those objects were not applied" in result.output
    result = runner.invoke(app, ["get", "appbinding", "-n", "demo", "--state", state, "-o", "json"])
    assert '"items": []' not in result.output and '"kind": "AppBinding"' in result.output


def test_the_adapted_instant_backupsession_works(tmp_path: Path) -> None:
    code, out, errors = plan("11b-instant-backupsession-adapted", tmp_path, "--detailed-exitcode")
    assert (code, errors) == (2, []), out
    assert "+ BackupSession/demo/deployment-backupsession will be created" in out


def test_a_kubedb_object_is_noted_and_its_given_appbinding_used(tmp_path: Path) -> None:
    _code, out, errors = plan("01b-postgres-with-kubedb-object", tmp_path)
    assert not [e for e in errors if "Postgres" in e], errors
    assert ("note: Postgres demo/sample-postgres (KubeDB) is not applied by stashplan; its AppBinding "
            "demo/sample-postgres is given") in out
    assert "Postgres/" not in out  # never applied


def test_the_appbinding_kubedb_would_create_is_planned_and_auto_backup_follows_the_annotation(
        tmp_path: Path) -> None:
    _code, out, _errors = plan("07-postgres-auto-backup", tmp_path, "--json")
    import json

    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    made = {c["address"]: c["after"] for c in doc["changes"] if c["action"] == "create"}
    appbinding = made["AppBinding/demo/sample-postgres-1"]
    assert appbinding["spec"]["clientConfig"]["service"] == {
        "name": "sample-postgres-1", "port": 5432, "scheme": "postgresql", "path": "/", "query": "sslmode=disable"}
    assert appbinding["spec"]["secret"] == {"name": "sample-postgres-1-auth"}
    assert (appbinding["spec"]["type"], appbinding["spec"]["version"]) == ("kubedb.com/postgres", "11.11")
    config = made["BackupConfiguration/demo/app-sample-postgres-1"]
    assert config["spec"]["task"]["name"] == "postgres-backup-11.9"
    assert config["spec"]["target"]["ref"]["name"] == "sample-postgres-1"
    # The generated Repository is checked like any other: its substituted backend is in the refusal (or plan).
    text = " ".join([*doc["refusals"], json.dumps(made.get("Repository/demo/app-sample-postgres-1", {}))])
    assert "app-sample-postgres-1" in text


def test_blueprint_and_annotated_appbinding_generate_stashs_names_and_prefix(tmp_path: Path) -> None:
    _, out, _ = plan("07b-redis-auto-backup-blueprint", tmp_path)
    assert ("note: AppBinding demo-1/sample-redis-1: metadata.annotations[stash.appscode.com/backup-blueprint]: "
            "auto-backup from BackupBlueprint redis-backup-template: Repository demo-1/app-sample-redis-1, "
            "BackupConfiguration demo-1/app-sample-redis-1") in " ".join(out.split())
    assert "+ BackupConfiguration/demo-1/app-sample-redis-1 will be created" in out
    _code, out, _ = plan("07b-redis-auto-backup-blueprint", tmp_path, "--json")
    import json

    doc = json.loads(out[out.index("{"):out.rindex("}") + 1])
    repos = [c["after"] for c in doc["changes"] if c["address"] == "Repository/demo-1/app-sample-redis-1"]
    for repo in repos:  # planned once the gcs backend is there; refused (one line) until then
        assert repo["spec"]["backend"]["gcs"]["prefix"] == "redis-backup/demo-1/redis/sample-redis-1"
    assert repos or any("Repository/app-sample-redis-1: spec.backend.gcs: refused" in r for r in doc["refusals"])


def test_an_annotation_naming_no_blueprint_is_refused(tmp_path: Path) -> None:
    code, _out, errors = plan("07c-redis-annotated-appbinding-only", tmp_path)
    assert code == 1
    assert errors == ["error: AppBinding demo-1/sample-redis-1: metadata.annotations[stash.appscode.com/"
                      "backup-blueprint]: BackupBlueprint 'redis-backup-template' does not exist; no auto-backup is "
                      "planned"]


def test_a_dedicated_backup_namespace_is_refused_whether_or_not_its_target_exists(tmp_path: Path) -> None:
    # Stash's "dedicated backup namespace" guide: a BackupConfiguration in `backup` whose target is in `prod`.
    # stashplan keeps a target in its invoker's namespace (a namespace reaches only its own databases).
    for example in ("14-dedicated-backup-namespace", "14b-dedicated-backup-namespace-with-appbinding"):
        code, out, errors = plan(example, tmp_path)
        assert code == 1, out
        assert ("error: BackupConfiguration backup/sample-mysql-backup: spec.target.ref.namespace: AppBinding "
                "prod/sample-mysql is in another namespace; a target must be in the BackupConfiguration's own "
                "namespace (backup), so that a namespace reaches only its own objects (Stash's cross-namespace targets "
                "are not supported: create the BackupConfiguration in prod)") in errors
        assert "CronJob/backup/stash-trigger-prod-sample-mysql-backup" not in out
        assert "RoleBinding/prod/" not in out


def test_in_local_mode_a_foreign_function_is_refused_and_its_configuration_is_invalid(tmp_path: Path) -> None:
    """The Function asks for container resources local mode cannot enforce: it is left out with an error line,
    so the configuration that needs it is Invalid (an error line too) and gets no CronJob: never shown as Ready."""
    code, out, errors = plan("15-concepts-task-function", tmp_path)
    assert code == 1, out
    assert any(e.startswith("error: Function/postgres-backup-11.2: spec.runtimeSettings.resources:") for e in errors)
    assert any(e.startswith("error: BackupConfiguration demo/sample-postgres-backup:") for e in errors), errors
    assert "CronJob/demo/stash-trigger-sample-postgres-backup" not in out
    assert 'phase Invalid' in out and '(phase Ready)' not in out


def test_a_restore_keeping_one_database_with_stashs_documented_args_plans(tmp_path: Path) -> None:
    code, out, errors = plan("06-mariadb-custom-restore-passing-args", tmp_path)
    assert code == 0 and not errors, out
    assert "+ Job/demo/stash-restore-sample-mariadb-restore will be created" in out
    assert "--args=--one-database testdb" in out


def test_a_specific_user_is_honoured_locally_when_stashplan_can_start_the_job_as_that_user(tmp_path: Path) -> None:
    code, out, errors = plan("06-mariadb-custom-specific-user", tmp_path)  # runAsUser 0, runAsGroup 0
    if os.geteuid() == 0:
        assert code == 0 and not errors, out
        assert "runAsUser: 0" in out
    else:
        assert code == 1 and errors == [
            f"error: BackupConfiguration/demo/sample-mariadb-backup: spec.runtimeSettings.pod.securityContext.{key}: local mode runs the Job as a "
            f"process on this machine as the user stashplan runs as (uid {os.getuid()}, gid {os.getgid()}); starting "
            f"it with {key} 0 needs stashplan to run as root; use a cluster" for key in ("runAsUser", "runAsGroup")]


def test_resource_limits_are_refused_locally_with_the_true_reason(tmp_path: Path) -> None:
    code, out, errors = plan("06-mariadb-custom-resource-limit", tmp_path)
    assert code == 1, out
    assert errors == [
        "error: BackupConfiguration/demo/sample-mariadb-backup: spec.runtimeSettings.container.resources: local mode runs the Job as a process on "
        "this machine, where no cgroup enforces requests or limits (a process rlimit is not a memory limit); use a "
        "cluster, or leave resources out to run here"]


def test_a_deployment_target_is_named_even_when_its_hook_body_is_also_refused(tmp_path: Path) -> None:
    code, out, errors = plan("09-slack-hook-deployment", tmp_path)
    assert code == 1, out
    fields = [e.split(": ")[3] for e in errors]
    assert fields == ["spec.hooks.postBackup.httpPost.body", "spec.target.paths", "spec.target.ref.kind",
                      "spec.target.volumeMounts"], errors
