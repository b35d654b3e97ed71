"""Options only Oracle MySQL's client knows, in a MySQL Task's `args`, when MariaDB's client is the one that runs
(Debian's and the image's `mysqldump` is `mariadb-dump`): KubeDB's default `--set-gtid-purged=OFF` (and column
statistics off) plan with a note and are left out, since MariaDB's dump already works that way; one with no
equivalent is refused when planning, in one line naming the option, the resource and param, and the client."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stashplan.cli import app
from tests.fixtures.examples import copy_examples

runner = CliRunner()

KUBEDB_MYSQL = """
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: app-db, namespace: demo}
spec:
  type: kubedb.com/mysql
  version: 8.0.14
  clientConfig:
    service: {name: sample-mysql, path: /, port: 3306, scheme: mysql}
    url: tcp(sample-mysql:3306)/
"""


def _plan(tmp_path: Path, args: str) -> tuple[int, str]:
    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    (manifests / "appbinding.yaml").write_text(KUBEDB_MYSQL)
    path = manifests / "backupconfiguration.yaml"
    config = yaml.safe_load(path.read_text())
    config["spec"]["task"] = {"name": "mysql-backup-8.0", "params": [{"name": "args", "value": args}]}
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["plan", "-f", str(manifests), "--state", str(tmp_path / "s.db")])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("option", ["--set-gtid-purged=OFF", "--skip-column-statistics", "--column-statistics=0"])
def test_an_oracle_option_mariadb_already_honours_plans_with_a_note(tmp_path: Path, option: str) -> None:
    code, out = _plan(tmp_path, f"--all-databases {option}")
    assert code == 0, out
    assert "phase Ready" in out
    assert re.search(rf"BackupConfiguration demo/app-db-backup: task param args: {option} left out: it is Oracle "
                     r"MySQL's only, and the client that will run, MariaDB's mariadb-dump \d+\.\d+ \(as mysqldump\), "
                     "already dumps that way", out), out


@pytest.mark.parametrize("option,why", [
    ("--set-gtid-purged=AUTO", "MariaDB's dump writes no GTID_PURGED; its --gtid records MariaDB GTIDs instead"),
    ("--column-statistics", "MariaDB's dump writes no MySQL 8 histograms"),
    ("--ssl-mode=REQUIRED", "MariaDB's client verifies the server with --ssl-ca, which the AppBinding's caBundle sets"),
])
def test_an_oracle_only_option_is_refused_naming_option_resource_and_client(
    tmp_path: Path, option: str, why: str
) -> None:
    code, out = _plan(tmp_path, f"--all-databases {option}")
    assert code == 1, out
    assert re.search(rf"error: BackupConfiguration demo/app-db-backup: task param args: option {re.escape(option)} "
                     r"is Oracle MySQL's only; the client that will run is MariaDB's mariadb-dump \d+\.\d+ "
                     rf"\(as mysqldump\), which does not know it: {re.escape(why)}", out), out
    assert "CronJob/demo/stash-trigger-app-db-backup" not in out
