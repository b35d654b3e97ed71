"""A `local` backend in a cluster: its volume is mounted into the backup and restore Job pods at mountPath;
emptyDir (and read-only volumes) are refused when the manifests load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stashplan.api import load_paths
from stashplan.errors import ManifestError
from tests.unit.test_desired_state import _meta, base_world, compute, session

PVC = {"mountPath": "/backups", "subPath": "pg", "persistentVolumeClaim": {"claimName": "backup-pvc"}}


def _with_backend(local: dict) -> dict[str, list[dict]]:
    world = base_world()
    world["Repository"][0]["spec"]["backend"]["local"] = local
    world["BackupSession"] = [session("nightly-1")]
    world["RestoreSession"] = [{
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "RestoreSession", "metadata": _meta("restore-1"),
        "spec": {"repository": {"name": "repo"},
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                    "name": "pg"}, "rules": [{"snapshots": ["latest"]}]}}}]
    return world


def test_backup_and_restore_jobs_mount_the_local_backend_volume_at_mount_path() -> None:
    out = compute(_with_backend(PVC))
    jobs = {o["metadata"]["name"]: o for o in out.objects if o["kind"] == "Job"}
    assert set(jobs) == {"stash-backup-nightly-1", "stash-restore-restore-1"}
    for job in jobs.values():
        pod = job["spec"]["template"]["spec"]
        assert {"name": "stash-local-backend", "persistentVolumeClaim": {"claimName": "backup-pvc"}} in pod["volumes"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert {"name": "stash-local-backend", "mountPath": "/backups"} in container["volumeMounts"]


@pytest.mark.parametrize("source", [{"hostPath": {"path": "/srv/backups"}}, {"nfs": {"server": "nfs", "path": "/b"}}])
def test_host_path_and_nfs_are_mounted_as_given(source: dict) -> None:
    out = compute(_with_backend({"mountPath": "/backups", **source}))
    [job] = [o for o in out.objects if o["metadata"]["name"] == "stash-backup-nightly-1"]
    assert {"name": "stash-local-backend", **source} in job["spec"]["template"]["spec"]["volumes"]


def test_a_local_backend_without_a_volume_adds_no_volume() -> None:
    out = compute(_with_backend({"mountPath": "/tmp/repo"}))
    [job] = [o for o in out.objects if o["metadata"]["name"] == "stash-backup-nightly-1"]
    assert "stash-local-backend" not in str(job)


@pytest.mark.parametrize(("source", "why"), [
    ({"emptyDir": {}}, "emptyDir is refused: it lives and dies with the backup Job's pod"),
    ({"secret": {"secretName": "x"}}, "secret is refused: a read-only volume"),
])
def test_an_empty_dir_backend_is_refused_with_one_line_naming_the_field(tmp_path: Path, source: dict, why: str) -> None:
    path = tmp_path / "repo.yaml"
    path.write_text(yaml.safe_dump({
        "apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
        "metadata": {"name": "scratch", "namespace": "demo"},
        "spec": {"backend": {"storageSecretName": "s", "local": {"mountPath": "/data", **source}}}}))
    with pytest.raises(ManifestError) as info:
        load_paths([path])
    [problem] = info.value.problems
    assert problem.startswith(f"{path}: Repository/scratch: spec.backend.local: {why}")
