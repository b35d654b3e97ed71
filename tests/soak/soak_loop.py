"""`make soak`: the local loop for several minutes over 20 BackupConfigurations (SQLite targets, a backup every
minute), killed with -9 twice and restarted. Afterwards every session has exactly one final phase, no
invoker ever had two running sessions (in the state, or as transfer processes), and every Succeeded
session's snapshot restores into SQLite with all its rows."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import psutil
import yaml

from providers.storage.local import LocalStorage
from stashplan.cluster.local.store import LocalCluster
from stashplan.repository import Repository

CONFIGS = 20
ROWS = 20_000  # a dump of about 1 MB: long enough for a kill -9 to land mid-transfer
PASSWORD = "soak-repository-password"
FINAL = {"Succeeded", "Failed", "Skipped"}
FINAL_EVENTS = {"BackupSession Succeeded": "Succeeded", "BackupSession Failed": "Failed",
                "BackupSession Skipped": "Skipped"}


def manifests(root: Path) -> Path:
    folder = root / "manifests"
    folder.mkdir()
    docs: list[dict] = []
    for i in range(CONFIGS):
        db = root / f"db{i}.sqlite"
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO items VALUES (?, ?)", [(n, f"item {n} of db {i}") for n in range(ROWS)])
        con.commit()
        con.close()
        docs += [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"repo{i}-secret", "namespace": "soak"},
             "stringData": {"RESTIC_PASSWORD": PASSWORD}},
            {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
             "metadata": {"name": f"repo{i}", "namespace": "soak"},
             "spec": {"backend": {"local": {"mountPath": str(root / f"repo{i}"), "hostPath": {"path": str(root)}},
                                  "storageSecretName": f"repo{i}-secret"}}},
            {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
             "metadata": {"name": f"db{i}", "namespace": "soak"},
             "spec": {"type": "stashplan.dev/sqlite", "version": "3", "clientConfig": {"url": f"sqlite:///{db}"}}},
            {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
             "metadata": {"name": f"cfg{i}", "namespace": "soak"},
             "spec": {"schedule": "* * * * *", "task": {"name": "sqlite-backup-3"},
                      "repository": {"name": f"repo{i}"},
                      "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                         "name": f"db{i}"}},
                      "retentionPolicy": {"name": "keep-all", "keepLast": 1000, "prune": False},
                      "backupHistoryLimit": 1000, "timeOut": "5m"}},
        ]
    (folder / "soak.yaml").write_text(yaml.safe_dump_all(docs))
    return folder


class Watcher:
    """Samples the state and the processes while the loop runs: phase histories, running sessions per invoker."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.history: dict[str, list[str]] = defaultdict(list)
        self.most_running_sessions = 0
        self.most_transfers = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except sqlite3.OperationalError:
                pass  # the file is busy for a moment: sample again
            self._stop.wait(0.25)

    def sample(self) -> None:
        if not self.state.exists():
            return
        cluster = LocalCluster(self.state)
        try:
            sessions = cluster.list("BackupSession", "soak")
        finally:
            cluster.close()
        running: Counter[str] = Counter()
        for s in sessions:
            name, phase = s["metadata"]["name"], (s.get("status") or {}).get("phase") or "Pending"
            if not self.history[name] or self.history[name][-1] != phase:
                self.history[name].append(phase)
            if phase == "Running":
                running[s["spec"]["invoker"]["name"]] += 1
        # Sessions with a transfer process, per invoker. A set: a transfer's child between fork and exec shows the
        # same command line for a moment, and is not a second transfer.
        transfers: defaultdict[str, set[str]] = defaultdict(set)
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmd = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE or "transfer" not in cmd or "--namespace=soak" not in cmd:
                continue
            session = next((a.split("=", 1)[1] for a in cmd if a.startswith("--backupsession=")), "")
            if session:
                transfers[session.rsplit("-", 1)[0]].add(session)
        self.most_running_sessions = max(self.most_running_sessions, *running.values(), 0)
        self.most_transfers = max(self.most_transfers, *map(len, transfers.values()), 0)
        self.samples += 1

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def start_loop(folder: Path, state: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "stashplan", "apply", "--watch", "--interval", "1", "-f",
                                 str(folder), "--state", str(state)], stdout=out, stderr=subprocess.STDOUT)


def running_transfers() -> int:
    """Backup transfers of this soak running now."""
    n = 0
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and "transfer" in cmd and "--namespace=soak" in cmd:
            n += 1
    return n


def until_second(second: int) -> None:
    """Sleep until `second` seconds past the next minute (when the every-minute Jobs are running)."""
    now = datetime.now(UTC)
    time.sleep(60 - now.second - now.microsecond / 1e6 + second)


def restores(root: Path, config: str, session: str) -> int:
    storage = LocalStorage(root / f"repo{config.removeprefix('cfg')}")
    repo = Repository.open(storage, PASSWORD)
    try:
        [snap] = [s for s in repo.snapshots() if f"session={session}" in s.tags]
        dump = BytesIO()
        repo.restore(snap.id, dump)
    finally:
        repo.close()
    con = sqlite3.connect(":memory:")
    con.executescript(dump.getvalue().decode())
    return int(con.execute("SELECT count(*) FROM items").fetchone()[0])


def test_soak_two_kill_9_restarts(tmp_path: Path) -> None:
    folder = manifests(tmp_path)
    state = tmp_path / "state" / "state.db"
    log = tmp_path / "loop.log"
    watcher = Watcher(state).start()
    loop = start_loop(folder, state, log)
    try:
        for _ in range(2):  # two kill -9 while the minute's Jobs run, each followed by a restart
            until_second(0)
            deadline = time.monotonic() + 40
            while not running_transfers() and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(loop.pid, signal.SIGKILL)
            loop.wait()
            loop = start_loop(folder, state, log)
        until_second(2)
        until_second(2)
        end = time.monotonic() + 120
        while time.monotonic() < end:  # let the last minute's sessions finish
            phases = {h[-1] for h in watcher.history.values()}
            if phases <= FINAL:
                break
            time.sleep(1)
        loop.send_signal(signal.SIGTERM)
        loop.wait(30)
    finally:
        if loop.poll() is None:
            loop.kill()
        watcher.stop()
    watcher.sample()
    cluster = LocalCluster(state)
    sessions = cluster.list("BackupSession", "soak")
    events: dict[str, list[str]] = defaultdict(list)
    for e in cluster.list("Event", "soak"):
        if e["involvedObject"]["kind"] == "BackupSession" and e["reason"] in FINAL_EVENTS:
            events[e["involvedObject"]["name"]].append(FINAL_EVENTS[e["reason"]])
    phases = Counter((s.get("status") or {}).get("phase") for s in sessions)
    print(f"\nsoak: {len(sessions)} sessions {dict(phases)}; {watcher.samples} samples; "
          f"at most {watcher.most_running_sessions} Running session(s) and {watcher.most_transfers} "
          f"transfer process(es) per invoker")
    lost = [j for j in cluster.list("Job", "soak") if "RunnerLost" in str((j.get("status") or {}).get("conditions"))]
    ended = [s for s in sessions if "RunnerLost" in str((s.get("status") or {}).get("conditions"))]
    print(f"soak: kill -9 left {len(lost)} Job(s) running; {len(ended)} of their sessions failed (their transfer "
          "was ended), the others had reported by themselves before the next loop started")
    assert lost, "neither kill -9 hit a running Job"
    assert len(sessions) >= 3 * CONFIGS
    assert phases["Succeeded"] >= CONFIGS, phases
    assert set(phases) <= FINAL, phases  # every session ended
    for s in sessions:
        name, phase = s["metadata"]["name"], s["status"]["phase"]
        seen_final = [p for p in watcher.history[name] if p in FINAL]
        assert seen_final in ([], [phase]), f"{name} went through final phases {seen_final}"
        assert events[name] in ([], [phase]), f"{name}: final-phase Events {events[name]}, phase {phase}"
    assert watcher.most_running_sessions <= 1
    assert watcher.most_transfers <= 1
    for s in sessions:
        if s["status"]["phase"] == "Succeeded":
            assert restores(tmp_path, s["spec"]["invoker"]["name"], s["metadata"]["name"]) == ROWS
