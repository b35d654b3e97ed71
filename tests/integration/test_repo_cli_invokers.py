"""`stashplan repo backup --invoker --target` records who a snapshot is for; `repo forget --invoker` applies a
policy to that invoker's snapshots only; a malformed reference is one line naming the option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository import Repository
from stashplan.repository.cli import app

runner = CliRunner()


@pytest.fixture
def repo_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STASHPLAN_PASSWORD", "cli-pass")
    url = f"local:{tmp_path}/repo"
    Repository.init(open_storage(url), "cli-pass", kdf=(2**14, 8, 1)).close()
    return url


def backup(repo_url: str, invoker: str, data: bytes) -> dict:
    args = ["backup", "--stdin", "--repo", repo_url, "--host", "host-0", "--stdin-filename", "dumpfile.sql"]
    args += ["--invoker", invoker, "--target", f"demo/{invoker.rsplit('/', 1)[1]}-db", "--json"]
    result = runner.invoke(app, args, input=data)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_forget_with_invoker_keeps_the_other_invokers_snapshots(repo_url: str) -> None:
    a = [backup(repo_url, "BackupConfiguration/demo/a", b"a%d" % n) for n in range(2)]
    b = [backup(repo_url, "BackupConfiguration/demo/b", b"b%d" % n) for n in range(2)]
    assert (b[0]["invoker"], b[0]["target"]) == ("BackupConfiguration/demo/b", "demo/b-db")
    result = runner.invoke(
        app, ["forget", "--repo", repo_url, "--keep-last", "1", "--invoker", "BackupConfiguration/demo/b", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert [s["id"] for s in json.loads(result.stdout)["remove"]] == [b[0]["id"]]
    listed = json.loads(runner.invoke(app, ["snapshots", "--repo", repo_url, "--json"]).stdout)
    assert sorted(s["id"] for s in listed) == sorted([a[0]["id"], a[1]["id"], b[1]["id"]])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backup", "--stdin", "--invoker", "demo/a"], "error: --invoker: 'demo/a' is not KIND/NAMESPACE/NAME"),
        (["backup", "--stdin", "--target", "a"], "error: --target: 'a' is not NAMESPACE/NAME"),
        (["forget", "--keep-last", "1", "--invoker", "x//y"], "error: --invoker: 'x//y' is not KIND/NAMESPACE/NAME"),
    ],
)
def test_a_malformed_reference_is_one_line_naming_the_option(repo_url: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--repo", repo_url], input=b"x")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(message)
