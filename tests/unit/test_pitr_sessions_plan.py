"""A RestoreSession's spec.pitr at plan time (what each mode refuses, in one line) and as the Job reads it (the
recovery target, the repository its restore_command names). Pure: no server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.api import validate_objects
from stashplan.api.modes import mode_problems
from stashplan.cli import app
from stashplan.errors import ManifestError, TransferError
from stashplan.pitr.walnames import parse_lsn
from stashplan.pitr.window import TargetKind
from stashplan.transfer.physical import pitr_target, repository_url


def session(pitr: dict | None, task: str = "postgres-pitr-restore-15", pgdata: str = "/srv/pg/new") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "repository": {"name": "repo"},
        "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding", "name": "pg"}},
        "task": {"name": task, "params": [{"name": "pgdata", "value": pgdata}] if pgdata else []},
    }
    if pitr is not None:
        spec["pitr"] = pitr
    return {"apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession",
            "metadata": {"name": "rs", "namespace": "demo"}, "spec": spec}


def valid(obj: dict) -> dict:
    [out] = validate_objects([("f.yaml", obj)])
    return out


def test_a_pitr_restore_is_accepted_in_local_mode_and_needs_a_claim_in_a_cluster() -> None:
    obj = valid(session({"targetTime": "2026-12-06T05:00:00Z"}))
    assert mode_problems([obj], "local") == []
    claim, recover = mode_problems([obj], "kube")
    assert claim.startswith("RestoreSession/demo/rs: spec.task.params: Task param claimName must name the "
                            "PersistentVolumeClaim")
    assert "Task param recover: a restore Job in a cluster cannot recover" in recover


@pytest.mark.parametrize("obj,field,why", [
    (session({"targetTime": "2026-12-06T05:00:00Z"}, task="postgres-restore-15"), "spec.task.name",
     "spec.pitr needs Task postgres-pitr-restore-<version>"),
    (session({"targetTime": "2026-12-06T05:00:00Z"}, pgdata=""), "spec.task.params", "Task param pgdata must"),
    (session(None, pgdata="relative/dir"), "spec.task.params", "Task param pgdata must"),
])
def test_local_mode_refuses_a_pitr_restore_it_cannot_run(obj: dict, field: str, why: str) -> None:
    [line] = mode_problems([valid(obj)], "local")
    assert line.startswith(f"RestoreSession/demo/rs: {field}: {why}")
    assert "given 'relative/dir'" in line if "relative" in str(obj) else "given" not in line


def test_two_targets_and_kubestash_exclusive_are_refused_naming_the_field() -> None:
    with pytest.raises(ManifestError, match=r"spec.pitr: .*give one of targetTime, targetLSN, targetName"):
        validate_objects([("f.yaml", session({"targetTime": "2026-12-06T05:00:00Z", "targetLSN": "0/3000060"}))])
    refusals: list[str] = []
    assert validate_objects([("f.yaml", session({"targetTime": "2026-12-06T05:00:00Z", "exclusive": True}))],
                            refusals) == []
    [line] = refusals
    assert "RestoreSession/rs: spec.pitr.exclusive: refused: KubeStash's" in line


def test_plan_in_local_mode_names_the_missing_data_directory_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "rs.yaml"
    path.write_text(yaml.safe_dump(session({"targetTime": "2026-12-06T05:00:00Z"}, pgdata="")))
    result = CliRunner().invoke(app, ["plan", "-f", str(path), "--state", str(tmp_path / "state.db")])
    assert result.exit_code == 1
    assert "RestoreSession/demo/rs: spec.task.params: Task param pgdata must name the data directory" in result.output
    assert "Traceback" not in result.output


def test_the_job_reads_the_target_of_each_kind() -> None:
    at = pitr_target(session({"targetTime": "2026-12-06T05:00:00.25Z"}))
    assert at.kind is TargetKind.TIME and at.time == datetime(2026, 12, 6, 5, 0, 0, 250000, tzinfo=UTC)
    naive = pitr_target(session({"targetTime": "2026-12-06T05:00:00"}))
    assert naive.time == datetime(2026, 12, 6, 5, tzinfo=UTC)
    lsn = pitr_target(session({"targetLSN": "0/3000060"}))
    assert lsn.kind is TargetKind.LSN and lsn.lsn == parse_lsn("0/3000060")
    assert pitr_target(session({"targetName": "before-migration"})).name == "before-migration"
    assert pitr_target(session(None)).kind is TargetKind.LATEST
    with pytest.raises(TransferError, match=r"spec.pitr.targetLSN: "):
        pitr_target(session({"targetLSN": "not-an-lsn"}))


def test_restore_command_names_local_and_s3_repositories_and_refuses_others(tmp_path: Path) -> None:
    (tmp_path / "repo" / "pg").mkdir(parents=True)
    local = {"metadata": {"name": "r"}, "spec": {"backend": {"local": {"mountPath": str(tmp_path / "repo"),
                                                                       "subPath": "pg"}}}}
    assert repository_url(local) == f"local:{tmp_path / 'repo' / 'pg'}"
    s3 = {"metadata": {"name": "r"}, "spec": {"backend": {"s3": {"endpoint": "minio:9000", "bucket": "b",
                                                                 "prefix": "/pg/"}}}}
    assert repository_url(s3) == "s3:https://minio:9000/b/pg"
    gcs = {"metadata": {"name": "r"}, "spec": {"backend": {"gcs": {"bucket": "b"}}}}
    with pytest.raises(TransferError, match=r"Repository r: .* local and s3 backends only, not gcs"):
        repository_url(gcs)
