"""The wheel works anywhere: built from a copy of the checkout, installed with its declared dependencies into a
fresh venv in a temporary folder, and run from outside the checkout (no PYTHONPATH, no specs/ next to it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import stashplan

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "stashplan", "providers", "specs")
pytestmark = [pytest.mark.heavy, pytest.mark.slow, pytest.mark.timeout(900)]


@dataclass(frozen=True)
class Installed:
    venv: Path
    run: Path  # the working directory of every command: outside the checkout
    env: dict[str, str]

    def cmd(self, *argv: str, stdin: bytes | None = None, timeout: float = 240) -> subprocess.CompletedProcess[bytes]:
        exe = self.venv / "bin" / argv[0]
        return subprocess.run([str(exe), *argv[1:]], cwd=self.run, env=self.env, input=stdin,
                              capture_output=True, timeout=timeout)

    def ok(self, *argv: str, stdin: bytes | None = None) -> str:
        proc = self.cmd(*argv, stdin=stdin)
        assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{proc.stdout[-2000:]!r}\n{proc.stderr[-2000:]!r}"
        return proc.stdout.decode()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the sources (`pip wheel`: setuptools comes from the index into pip's
    isolated build environment), then `pip install` it from the index into a new venv: this checks that the
    declared dependencies are enough. pip's cache makes repeated runs quick (about 40 s here)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)],
                   check=True, env=env, timeout=300)
    (wheel,) = (tmp / "dist").glob("stashplan-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)],
                   check=True, env=env, timeout=600)
    run = tmp / "run"
    run.mkdir()
    return Installed(venv, run, {**env, "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"})


def site_specs(inst: Installed, part: str) -> Path:
    out = inst.ok("python", "-c", f"from stashplan.packaged import specs_dir; print(specs_dir({part!r}))")
    return Path(out.strip())


def test_the_installed_package_runs_from_the_venv_not_the_checkout(installed: Installed) -> None:
    where = Path(installed.ok("python", "-c", "import stashplan, providers; print(stashplan.__file__)").strip())
    assert where.is_relative_to(installed.venv), where
    assert installed.ok("stashplan", "--version").strip() == f"stashplan {stashplan.__version__}"
    examples = site_specs(installed, "examples")
    assert examples.is_relative_to(installed.venv) and not examples.is_symlink()


def test_install_prints_every_part_and_crds_the_eight_definitions(installed: Installed) -> None:
    objs = list(yaml.safe_load_all(installed.ok("stashplan", "install", "--namespace", "backups")))
    kinds = sorted(o["kind"] for o in objs)
    assert kinds.count("CustomResourceDefinition") == 8
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service"):
        assert kind in kinds, kinds
    deployments = {o["metadata"]["name"] for o in objs if o["kind"] == "Deployment"}
    assert deployments == {"stashplan", "stashplan-pushgateway"}
    crds = list(yaml.safe_load_all(installed.ok("stashplan", "crds")))
    assert sorted(c["spec"]["names"]["kind"] for c in crds) == sorted(
        c["spec"]["names"]["kind"] for c in objs if c["kind"] == "CustomResourceDefinition")


def test_plan_of_the_shipped_example_then_the_demo_applies_triggers_backs_up_and_restores(
        installed: Installed) -> None:
    example = site_specs(installed, "examples") / "local-sqlite"
    out = installed.ok("stashplan", "plan", "-f", str(example), "--state", str(installed.run / "plan.db"))
    assert "Plan: " in out and "to add" in out
    demo = installed.ok("python", "-m", "stashplan.demo", "--work", str(installed.run / "demo"))
    flat = " ".join(demo.split())
    assert "BackupSession demo/app-db-backup-" in flat and "RestoreSession demo/app-db-restore: Succeeded" in flat
    assert "orders: 20000 rows in app.db, 20000 in restored.db -> identical" in flat


def test_repo_round_trip_restores_the_bytes_backed_up(installed: Installed) -> None:
    data = os.urandom(1 << 20) * 3 + bytes(range(256)) * 4000
    repo = f"local:{installed.run / 'repo'}"
    env_password = {"STASHPLAN_PASSWORD": "wheel-test-password"}
    inst = Installed(installed.venv, installed.run, {**installed.env, **env_password})
    inst.ok("stashplan", "repo", "init", "-r", repo)
    inst.ok("stashplan", "repo", "backup", "--stdin", "-r", repo, "--stdin-filename", "data.bin", stdin=data)
    target = installed.run / "restored.bin"
    inst.ok("stashplan", "repo", "restore", "latest", "-r", repo, "--target", str(target))
    assert target.read_bytes() == data


def test_install_from_a_broken_installation_fails_in_one_line(installed: Installed) -> None:
    """Last in this module: it removes a file from the installed package."""
    (site_specs(installed, "deploy") / "rbac.yaml").unlink()
    proc = installed.cmd("stashplan", "install")
    assert proc.returncode == 1 and proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: install: rbac.yaml is missing from "), lines
