"""A KubeStash object (`*.kubestash.com`) gets one line saying KubeStash's API is not supported, instead of one
field error per difference from Stash's kind of the same name; plan exits 1 and the rest still plans."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from stashplan.cli import app
from tests.fixtures.examples import copy_examples

runner = CliRunner()

KUBESTASH_CONFIG = """
apiVersion: core.kubestash.com/v1alpha1
kind: BackupConfiguration
metadata: {name: sample-mysql-backup, namespace: demo}
spec:
  target: {apiGroup: kubedb.com, kind: MySQL, namespace: demo, name: sample-mysql}
  backends:
    - name: gcs-backend
      storageRef: {namespace: demo, name: gcs-storage}
      retentionPolicy: {name: demo-retention, namespace: demo}
  sessions:
    - name: frequent-backup
      scheduler: {schedule: "*/5 * * * *", jobTemplate: {backoffLimit: 1}}
      repositories:
        - {name: gcs-mysql-repo, backend: gcs-backend, directory: /mysql}
      addon: {name: mysql-addon, tasks: [{name: logical-backup}]}
"""

STORAGE = """
apiVersion: storage.kubestash.com/v1alpha1
kind: BackupStorage
metadata: {name: gcs-storage, namespace: demo}
spec:
  storage: {provider: gcs, gcs: {bucket: kubestash-qa, prefix: demo}}
  usagePolicy: {allowedNamespaces: {from: All}}
"""


@pytest.mark.parametrize("doc,kind,api", [
    (KUBESTASH_CONFIG, "BackupConfiguration/sample-mysql-backup", "core.kubestash.com/v1alpha1"),
    (STORAGE, "BackupStorage/gcs-storage", "storage.kubestash.com/v1alpha1"),
])
def test_a_kubestash_object_is_one_line_and_exit_1(tmp_path: Path, doc: str, kind: str, api: str) -> None:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    (manifests / "kubestash.yaml").write_text(doc)
    result = runner.invoke(app, ["plan", "-f", str(manifests), "--state", str(tmp_path / "s.db")])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {manifests / 'kubestash.yaml'}: {kind}: apiVersion: KubeStash's API ({api}) is not "
                      "supported; stashplan reads Stash's stash.appscode.com API"]
    assert "CronJob/demo/stash-trigger-app-db-backup" in result.output  # the Stash objects beside it still plan
