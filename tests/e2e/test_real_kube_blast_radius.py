"""One bad object never stops the others' backups, on the real control plane (issue 22 item 2): 1,000 valid
BackupConfigurations and 10 that stashplan refuses (workload targets, task params the tool would refuse),
created as kubectl would, get 1,000 CronJobs and 10 error lines naming each bad one, from a one-shot `apply`
(exit 1) and from the loop, which keeps running."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stashplan.kinds import KINDS
from tests.fixtures.databases import PgDatabase
from tests.fixtures.kube_real import RealKube
from tests.fixtures.s3 import S3Bucket
from tests.kube.rest import Rest

pytestmark = pytest.mark.real_kube

NS = "e2e-blast"
VALID = 1000
APPBINDING = "appcatalog.appscode.com/v1alpha1"


def _post(rest: Rest, doc: dict) -> None:
    info = KINDS[doc["kind"]]
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    rest.post(f"{base}/namespaces/{NS}/{info.plural}", dict(doc, apiVersion=info.api_version))


def _config(name: str, *, target_kind: str = "AppBinding", args: str = "") -> dict:
    task: dict = {"name": "postgres-backup-15"}
    if args:
        task["params"] = [{"name": "args", "value": args}]
    api = APPBINDING if target_kind == "AppBinding" else "apps/v1"
    return {"kind": "BackupConfiguration", "metadata": {"name": name, "namespace": NS},
            "spec": {"schedule": "0 3 1 1 *", "task": task, "repository": {"name": "repo"},
                     "target": {"ref": {"apiVersion": api, "kind": target_kind, "name": "app-pg"}},
                     "retentionPolicy": {"name": "keep-last-3", "keepLast": 3, "prune": True}}}  # fmt: skip


def _bad() -> dict[str, dict]:
    bad = {f"workload-{i}": _config(f"workload-{i}", target_kind="Deployment") for i in range(5)}
    bad |= {f"bad-args-{i}": _config(f"bad-args-{i}", args=f"-af/tmp/stolen-{i}") for i in range(5)}
    return bad


def _cronjobs(rest: Rest) -> set[str]:
    items: list[dict] = []
    path, cont = f"/apis/batch/v1/namespaces/{NS}/cronjobs", ""
    while True:
        page = rest.get(path, limit="500", **({"continue": cont} if cont else {}))
        items += page["items"]
        cont = page["metadata"].get("continue") or ""
        if not cont:
            return {c["metadata"]["name"] for c in items}


def _phase(rest: Rest, name: str) -> str:
    info = KINDS["BackupConfiguration"]
    doc = rest.get(f"/apis/{info.group}/{info.version}/namespaces/{NS}/{info.plural}/{name}")
    return str((doc.get("status") or {}).get("phase", ""))


def test_a_thousand_valid_configurations_are_scheduled_beside_ten_refused_ones_by_apply_and_by_the_loop(
    real_kube: RealKube, pg_database: Callable[[], PgDatabase], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    real_kube.reset((NS,))
    rest = real_kube.rest
    db = pg_database()
    _post(rest, {"kind": "Secret", "metadata": {"name": "pg-auth", "namespace": NS},
                 "stringData": {"username": "postgres", "password": ""}})  # fmt: skip
    _post(rest, {"kind": "AppBinding", "metadata": {"name": "app-pg", "namespace": NS},
                 "spec": {"type": "kubedb.com/postgres", "version": "15", "clientConfig": {"url": db.url},
                          "secret": {"name": "pg-auth"}}})  # fmt: skip
    _post(rest, {"kind": "Secret", "metadata": {"name": "repo-secret", "namespace": NS},
                 "stringData": {"RESTIC_PASSWORD": "blast-radius", **s3_bucket.endpoint.env()}})  # fmt: skip
    _post(rest, {"kind": "Repository", "metadata": {"name": "repo", "namespace": NS},
                 "spec": {"backend": {"s3": {"endpoint": s3_bucket.endpoint.url, "bucket": s3_bucket.name,
                                             "prefix": "blast"}, "storageSecretName": "repo-secret"}}})  # fmt: skip
    bad = _bad()
    valid = [f"pg-{i:04d}" for i in range(VALID)]
    for name in valid:
        _post(rest, _config(name))
    for doc in bad.values():
        _post(rest, doc)

    cli = [sys.executable, "-m", "stashplan"]
    where = ["--cluster", "kube", "--kubeconfig", real_kube.kubeconfig]
    applied = subprocess.run([*cli, "apply", *where, "-n", NS, "--auto-approve"], capture_output=True, text=True,
                             timeout=900)  # fmt: skip
    out = applied.stdout + applied.stderr
    assert applied.returncode == 1, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    for name in bad:
        assert any(f"BackupConfiguration {NS}/{name}" in line or f"BackupConfiguration/{NS}/{name}" in line
                   for line in errors), (name, errors)  # fmt: skip
    assert len({n for n in bad if any(n in e for e in errors)}) == len(bad)
    cronjobs = _cronjobs(rest)
    assert len(cronjobs) == VALID, len(cronjobs)
    assert not any(name in cj for cj in cronjobs for name in bad), sorted(cronjobs)[:5]
    assert _phase(rest, "pg-0000") == "Ready"
    assert {_phase(rest, name) for name in bad} == {"Invalid"}

    # The loop over the same cluster: a new valid configuration among the refused ones still gets its
    # CronJob, the loop logs each refused one and stays up.
    _post(rest, _config("pg-late"))
    loop = subprocess.Popen([*cli, "apply", *where, "--watch", "--interval=1", "--no-leader-elect", "-n", NS,
                             "--auto-approve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "stash-trigger-pg-late" not in _cronjobs(rest):
            assert loop.poll() is None, loop.communicate()[1][-3000:]
            time.sleep(2)
        assert any("pg-late" in cj for cj in _cronjobs(rest))
        time.sleep(3)
        assert loop.poll() is None, "the loop stopped"
    finally:
        loop.terminate()
        stdout, stderr = loop.communicate(timeout=60)
    logs = stdout + stderr
    logged = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    text = " ".join(str(rec.get("msg", "")) + " " + json.dumps(rec) for rec in logged) if logged else logs
    for name in bad:
        assert name in text, (name, logs[-2000:])
