"""The `stashplan` command's start-up: `repo` commands run on the repository CLI alone, the rest on the full CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from providers.storage import LocalStorage
from stashplan.repository.repo import Repository

PLANNER_MODULES = ("pydantic", "stashplan.api", "stashplan.reconcile", "stashplan.cluster", "kubernetes", "deepdiff")


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "stashplan", *args], input=stdin, capture_output=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_repo_commands_work_through_the_command_and_skip_the_planner(tmp_path: Path) -> None:
    env = {"STASHPLAN_PASSWORD": "entry-test-password"}
    repo = f"local:{tmp_path / 'repo'}"
    Repository.init(LocalStorage(tmp_path / "repo"), env["STASHPLAN_PASSWORD"], kdf=(2**10, 8, 1))  # cheap key
    backup = run("-v", "repo", "backup", "--stdin", "--stdin-filename", "a.sql", "--repo", repo, env=env,
                 stdin=b"select 1;\n" * 1000)
    assert backup.returncode == 0, backup.stderr
    restored = run("repo", "restore", "latest", "--repo", repo, env=env)
    assert restored.returncode == 0 and restored.stdout == b"select 1;\n" * 1000
    probe = ("import sys\nfrom stashplan.entry import main\n"
             f"try:\n    main(['repo', 'snapshots', '--repo', {repo!r}])\nexcept SystemExit as e:\n    code = e.code\n"
             f"print([m for m in sys.modules if m.startswith({PLANNER_MODULES!r})], code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**os.environ, **env})
    assert "1 snapshots" in done.stdout
    assert done.stderr.strip().endswith("[] 0"), done.stderr


def test_help_and_errors_keep_the_full_command_name() -> None:
    top = run("--help")
    assert top.returncode == 0 and b"Usage: stashplan [OPTIONS] COMMAND" in top.stdout
    sub = run("repo", "--help")
    assert sub.returncode == 0 and b"Usage: stashplan repo [OPTIONS] COMMAND" in sub.stdout
    assert b"--install-completion" not in sub.stdout
    bad = run("repo", "snapshots", "--no-such-flag")
    assert bad.returncode == 2 and b"stashplan repo snapshots" in bad.stderr
    assert run("--version").stdout.startswith(b"stashplan ")


LOOP_ONLY_MODULES = ("stashplan.repository", "stashplan.transfer", "stashplan.operator.health",
                     "stashplan.cluster.local.controllers", "prometheus_client", "deepdiff")


def test_plan_and_apply_start_without_the_repository_transfer_and_loop_modules(tmp_path: Path) -> None:
    from tests.fixtures.examples import copy_examples

    manifests = copy_examples(tmp_path / "m", tmp_path / "demo")
    state = tmp_path / "state.db"
    for command in (["apply", "--auto-approve"], ["plan", "--detailed-exitcode"]):
        probe = ("import sys\nfrom stashplan.entry import main\n"
                 f"try:\n    main({[*command, '-f', str(manifests), '--state', str(state)]!r})\n"
                 "except SystemExit as e:\n    code = e.code\n"
                 f"print([m for m in sys.modules if m.startswith({LOOP_ONLY_MODULES!r})], code, file=sys.stderr)")
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
        assert done.stderr.strip().endswith("[] 0"), (command, done.stdout, done.stderr)
    assert "No changes" in done.stdout
    assert run("repo", "--help").returncode == 0 and run("transfer", "--help").returncode == 0
    typo = run("tranfer")
    assert typo.returncode == 2 and b"Did you mean 'transfer'?" in typo.stderr


def test_pg_commands_start_on_their_own_cli_and_a_file_pushed_ahead_is_answered_before_any(tmp_path: Path) -> None:
    from stashplan.pitr.lookahead import _fingerprint

    usage = run("pg", "--help")
    assert usage.returncode == 0 and b"Usage: stashplan pg [OPTIONS] COMMAND" in usage.stdout
    wal = tmp_path / "000000010000000000000003"
    wal.write_bytes(b"x" * 8192)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / f"{wal.name}.ok").write_text(_fingerprint(wal))
    argv = ["pg", "wal-push", "-r", f"local:{tmp_path / 'no-repo'}", "--spool", str(spool), str(wal)]
    probe = ("import sys\nfrom stashplan.entry import main\nmain(" + repr(argv) + ")\n"
             "print([m for m in sys.modules if m.startswith(('typer', 'stashplan.repository', 'stashplan.cli'))],"
             " file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0 and f"{wal.name}: pushed ahead" in done.stderr
    assert done.stderr.strip().endswith("[]"), done.stderr
    again = run(*argv)  # the record is used once: now the CLI runs (and wants the repository's password)
    assert again.returncode == 1 and b"no password" in again.stderr
