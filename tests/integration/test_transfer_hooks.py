"""Restore hooks and hook timeouts against a real PostgreSQL: preRestore/postRestore as Stash runs them,
executionPolicy, and a hook that hangs is killed at its timeout instead of blocking the session."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from stashplan.transfer.hooks import Summary, run_hook
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.databases import PG_HOST, PG_PORT, PgDatabase
from tests.fixtures.transfer import StashWorld


def with_hooks(w: StashWorld, kind: str, name: str, hooks: dict) -> None:
    obj = w.cluster.get(kind, w.namespace, name)
    obj["spec"]["hooks"] = hooks
    w.cluster.replace(obj)


def test_restore_hooks_run_around_a_postgres_restore_and_a_failed_pre_hook_restores_nothing(
    stash_world: StashWorld, pg_database: Callable[[], PgDatabase], tmp_path: Path
) -> None:
    w = stash_world
    src, dst, other = pg_database(), pg_database(), pg_database()
    src.sql("CREATE TABLE items(id int primary key, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two')")
    w.appbinding("src-pg", src.url, username="postgres")
    w.appbinding("dst-pg", dst.url, username="postgres")
    w.appbinding("other-pg", other.url, username="postgres")
    w.repository()
    w.backup_config("pg-backup", "src-pg")
    w.backup_session("pg-backup", "pg-backup-1")
    assert backup(w.cluster, w.namespace, "pg-backup-1", TransferOptions(database="postgres")).ok

    marker = tmp_path / "pre-restore"
    w.restore_session("pg-restore", "dst-pg")
    with_hooks(w, "RestoreSession", "pg-restore", {
        "preRestore": {"exec": {"command": ["sh", "-c", f"echo '{{{{ .Invoker.Kind }}}} {{{{ .Name }}}}' > {marker}"]}},
        "postRestore": {"tcpSocket": {"host": PG_HOST, "port": PG_PORT}, "executionPolicy": "OnSuccess"},
    })
    result = restore(w.cluster, w.namespace, "pg-restore", TransferOptions(database="postgres"))
    assert result.ok, result.error
    assert marker.read_text().strip() == "RestoreSession pg-restore"
    assert dst.sql("SELECT string_agg(name, ',' ORDER BY id) FROM items") == "one,two"
    assert w.condition("RestoreSession", "pg-restore", "PreRestoreHookExecutionSucceeded")["status"] == "True"
    post = w.condition("RestoreSession", "pg-restore", "PostRestoreHookExecutionSucceeded")
    assert (post["status"], post["reason"]) == ("True", "SuccessfullyExecutedPostRestoreHook")

    # A failing preRestore hook: Failed, nothing restored, and no postRestore hook (even with Always).
    w.restore_session("pg-restore-2", "other-pg")
    with_hooks(w, "RestoreSession", "pg-restore-2", {
        "preRestore": {"exec": {"command": ["sh", "-c", "echo 'target is in use' >&2; exit 1"]}},
        "postRestore": {"exec": {"command": ["touch", str(tmp_path / "post-ran")]}},
    })
    result = restore(w.cluster, w.namespace, "pg-restore-2", TransferOptions(database="postgres"))
    assert not result.ok
    assert "preRestore hook failed: exec sh exited with code 1: target is in use" in result.error
    status = w.status("RestoreSession", "pg-restore-2")
    assert status["phase"] == "Failed" and "preRestore hook failed" in status["stats"][0]["error"]
    assert other.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'items'") == "0"
    assert not (tmp_path / "post-ran").exists()
    assert "PostRestoreHookExecutionSucceeded" not in {c["type"] for c in status["conditions"]}
    events = {(e["reason"], e["type"]) for e in w.events("pg-restore-2")}
    assert ("RestoreSession Failed", "Warning") in events


def test_post_hook_policy_skips_and_a_hanging_hook_is_killed_at_its_timeout(
    stash_world: StashWorld, sqlite_file: Path, tmp_path: Path
) -> None:
    w = stash_world
    w.appbinding("app-db", f"sqlite:///{sqlite_file}")
    w.repository()
    w.backup_config("db-backup", "app-db")
    with_hooks(w, "BackupConfiguration", "db-backup", {
        "postBackup": {"exec": {"command": ["touch", str(tmp_path / "on-failure-ran")]},
                       "executionPolicy": "OnFailure"},
    })
    w.backup_session("db-backup", "db-backup-1")
    result = backup(w.cluster, w.namespace, "db-backup-1", TransferOptions(database="sqlite"))
    assert result.ok, result.error
    assert not (tmp_path / "on-failure-ran").exists()
    [cond] = [c for c in w.status("BackupSession", "db-backup-1")["targets"][0]["conditions"]
              if c["type"] == "PostBackupHookExecutionSucceeded"]
    assert cond["status"] == "True" and "executionPolicy is 'OnFailure' but phase is 'Succeeded'" in cond["message"]

    # A preBackup hook that never ends (stashed/stash#1340) is killed at the hook timeout; no snapshot.
    with_hooks(w, "BackupConfiguration", "db-backup", {"preBackup": {"exec": {"command": ["sleep", "60"]}}})
    w.backup_session("db-backup", "db-backup-2")
    started = time.monotonic()
    result = backup(w.cluster, w.namespace, "db-backup-2", TransferOptions(database="sqlite", hook_timeout=1.0))
    assert not result.ok and time.monotonic() - started < 30
    assert "preBackup hook failed: exec sleep did not finish within 1s and was killed" in result.error
    assert result.host.snapshot is None


def test_tcp_hook_to_a_closed_port_fails_the_session_with_the_reason(
    stash_world: StashWorld, sqlite_file: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    w = stash_world
    w.appbinding("app-db", f"sqlite:///{sqlite_file}")
    w.repository()
    w.backup_config("db-backup", "app-db")
    with_hooks(w, "BackupConfiguration", "db-backup", {"preBackup": {"tcpSocket": {"port": closed}}})
    w.backup_session("db-backup", "db-backup-1")
    result = backup(w.cluster, w.namespace, "db-backup-1", TransferOptions(database="sqlite"))
    assert not result.ok
    assert f"tcpSocket 127.0.0.1:{closed}: Connection refused" in result.error  # no host: this machine


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            except OSError:
                continue
            if marker.encode() in argv and state != "Z":
                found.append(int(entry.name))
    return found


def test_a_hook_timeout_ends_children_that_left_the_hook_session(
    stash_world: StashWorld, sqlite_file: Path
) -> None:
    # The hook's child calls setsid (as a daemonizing script does): it leaves the hook's session and process
    # group, yet it is the hook's and must end with it.
    marker = f"300.{time.time_ns() % 1_000_000_007}"
    w = stash_world
    w.appbinding("app-db", f"sqlite:///{sqlite_file}")
    w.repository()
    w.backup_config("db-backup", "app-db")
    script = f'setsid sh -c "sleep {marker}" & setsid sh -c "sh -c \\"sleep {marker}\\" &" ; sleep {marker}'
    with_hooks(w, "BackupConfiguration", "db-backup", {"preBackup": {"exec": {"command": ["sh", "-c", script]}}})
    w.backup_session("db-backup", "db-backup-1")
    try:
        result = backup(w.cluster, w.namespace, "db-backup-1", TransferOptions(database="sqlite", hook_timeout=1.0))
        assert not result.ok
        assert "preBackup hook failed: exec sh did not finish within 1s and was killed" in result.error
        assert "\n" not in result.error
        assert _processes_with(marker) == []
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_a_hook_that_succeeds_leaves_no_daemon_behind() -> None:
    marker = f"301.{time.time_ns() % 1_000_000_007}"
    summary = Summary("s", "demo", {}, {})
    try:
        run_hook({"exec": {"command": ["sh", "-c", f'setsid sh -c "sleep {marker} & sleep {marker}" &']}},
                 summary, timeout=10, default_host="127.0.0.1")
        assert _processes_with(marker) == []
    finally:
        for pid in _processes_with(marker):
            os.kill(pid, signal.SIGKILL)
