"""Folders of Stash's own documentation, planned as a Stash user would: each works, or is refused at plan time
with one line per kind or field (naming the object, the field and why) while the rest of the folder plans."""

from __future__ import annotations

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


def test_apply_applies_nothing_when_anything_is_refused(tmp_path: Path) -> None:
    state = str(tmp_path / "s.db")
    result = runner.invoke(app, ["apply", "-f", str(DOCS / "10-backupbatch"), "--state", state, "--auto-approve"])
    assert result.exit_code == 1
    assert "nothing applied" in result.output
    result = runner.invoke(app, ["get", "appbinding", "-n", "demo", "--state", state, "-o", "json"])
    assert '"items": []' in result.output


def test_the_adapted_instant_backupsession_works(tmp_path: Path) -> None:
    code, out, errors = plan("11b-instant-backupsession-adapted", tmp_path, "--detailed-exitcode")
    assert (code, errors) == (2, []), out
    assert "+ BackupSession/demo/deployment-backupsession will be created" in out
