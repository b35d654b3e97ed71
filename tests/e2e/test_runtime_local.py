"""runtimeSettings in local mode, end to end: nice/ionice and env reach the real dump process the backup Job
starts; what only a kubelet could enforce is refused at plan time, one line each."""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from stashplan.api import builtin_addons, load_paths
from stashplan.cli import app
from stashplan.cluster.factory import settings as cluster_settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once

runner = CliRunner()


def documents(db: Path, repo: Path, runtime: dict, **spec: object) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "repo-secret", "namespace": "demo"},
         "stringData": {"RESTIC_PASSWORD": "runtime-e2e"}},
        {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
         "metadata": {"name": "repo", "namespace": "demo"},
         "spec": {"backend": {"local": {"mountPath": str(repo), "hostPath": {"path": str(repo)}},
                              "storageSecretName": "repo-secret"}}},
        {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
         "metadata": {"name": "app-db", "namespace": "demo"},
         "spec": {"type": "stashplan.dev/sqlite", "clientConfig": {"url": f"sqlite:///{db}"}}},
        {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
         "metadata": {"name": "app-db-backup", "namespace": "demo"},
         "spec": {"schedule": "0 3 * * *", "repository": {"name": "repo"},
                  "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                     "name": "app-db"}},
                  "retentionPolicy": {"name": "keep", "keepLast": 3, "prune": True},
                  "runtimeSettings": runtime, **spec}},
    ]


def test_nice_ionice_and_env_reach_the_dump_process_of_a_local_backup_job(tmp_path: Path, sqlite_file: Path) -> None:
    seen = tmp_path / "dump-saw"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "sqlite3"  # found first on the PATH the Job's env sets: records how it was started
    wrapper.write_text(
        "#!/bin/sh\n"
        f"echo \"nice=$(cut -d' ' -f19 /proc/$$/stat) io=$(ionice -p $$) note=$BACKUP_NOTE\" > {seen}\n"
        f"PATH={os.environ['PATH']} exec sqlite3 \"$@\"\n"
    )
    wrapper.chmod(0o755)
    folder = tmp_path / "m"
    folder.mkdir()
    runtime = {"container": {"nice": {"adjustment": 7}, "ionice": {"class": 2, "classData": 6},
                             "env": [{"name": "PATH", "value": f"{bin_dir}:{os.environ['PATH']}"},
                                     {"name": "BACKUP_NOTE", "value": "from runtimeSettings"}]},
               "pod": {"podLabels": {"team": "db"}}}
    (folder / "all.yaml").write_text(yaml.safe_dump_all(documents(sqlite_file, tmp_path / "repo", runtime)))
    state = tmp_path / "state.db"
    code = runner.invoke(app, ["plan", "-f", str(folder), "--state", str(state)])
    assert code.exit_code == 0, code.output
    objs = load_paths([folder])
    cluster = LocalCluster(state)
    controllers = LocalControllers.create(cluster, cluster_settings("local", state).env(), tmp_path / "logs")
    run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
    result = runner.invoke(app, ["trigger", "app-db-backup", "-n", "demo", "--state", str(state)])
    assert result.exit_code == 0, result.output
    end = time.monotonic() + 60
    while time.monotonic() < end:
        run_once(cluster, manifests=objs, addons=builtin_addons(), controllers=controllers)
        sessions = cluster.list("BackupSession", "demo")
        if sessions and (sessions[0].get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            break
        controllers.jobs.wait_all(0.3)
    [session] = cluster.list("BackupSession", "demo")
    assert session["status"]["phase"] == "Succeeded", session["status"]
    own_nice = os.nice(0)
    assert seen.read_text().split() == [f"nice={own_nice + 7}", "io=best-effort:", "prio", "6",
                                        "note=from", "runtimeSettings"]
    [job] = cluster.list("Job", "demo")
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "db"
    env = {e["name"]: e["value"] for e in template["spec"]["containers"][0]["env"]}
    assert (env["NICE_ADJUSTMENT"], env["IONICE_CLASS"], env["IONICE_CLASS_DATA"]) == ("7", "2", "6")


def test_local_mode_refuses_what_only_a_kubelet_enforces_one_line_each(tmp_path: Path, sqlite_file: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    runtime = {"container": {"resources": {"limits": {"memory": "1Gi"}}, "securityContext": {"readOnlyRootFilesystem": True},
                             "env": [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
               "pod": {"nodeSelector": {"disk": "ssd"}, "serviceAccountName": "backup-sa"}}
    docs = documents(sqlite_file, tmp_path / "repo", runtime, tempDir={"medium": "Memory", "disableCaching": True},
                     interimVolumeTemplate={"spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "1Gi"}}}})
    (folder / "all.yaml").write_text(yaml.safe_dump_all(docs))
    result = runner.invoke(app, ["plan", "-f", str(folder), "--state", str(tmp_path / "s.db")])
    assert result.exit_code == 1
    lines = [" ".join(line.split()) for line in result.output.split("error: ")[1:]]
    fields = sorted(line.split(": ")[1] for line in lines)
    assert fields == ["spec.interimVolumeTemplate", "spec.runtimeSettings.container.env[0].valueFrom",
                      "spec.runtimeSettings.container.resources",
                      "spec.runtimeSettings.container.securityContext.readOnlyRootFilesystem",
                      "spec.runtimeSettings.pod.nodeSelector", "spec.tempDir.medium"], lines
    assert all(line.startswith("BackupConfiguration/demo/app-db-backup: ") for line in lines)
    assert all("local mode runs the Job as a process on this machine" in line for line in lines)
