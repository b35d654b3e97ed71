"""A YAML alias bomb (600 bytes that expand to hundreds of millions of nodes) is refused by `plan` at once with
a one-line error naming the file; ordinary anchors and aliases still load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAD = """apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: bomb, namespace: demo}
spec:
  clientConfig: {url: "sqlite:////tmp/x.db"}
  parameters:
"""


def bomb(levels: int = 9) -> str:
    lines = ['    a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"    a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return HEAD + "\n".join(lines) + "\n"


def plan(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "appbinding.yaml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "stashplan", "plan", "-f", str(path), "--state",
                           str(tmp_path / "state.db")], capture_output=True, text=True, timeout=60)


def test_alias_bomb_is_refused_with_one_line_naming_the_file(tmp_path: Path) -> None:
    text = bomb()
    assert len(text) < 700
    proc = plan(tmp_path, text)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {tmp_path / 'appbinding.yaml'}: invalid YAML: aliases expand")
    assert "alias bomb" in lines[0]


def test_ordinary_anchors_and_aliases_still_load(tmp_path: Path) -> None:
    text = HEAD + '    common: &common {sslmode: disable, connect_timeout: "10"}\n    replica: *common\n'
    proc = plan(tmp_path, text)
    assert proc.returncode == 0, proc.stderr
    assert "AppBinding/demo/bomb will be created" in proc.stdout
