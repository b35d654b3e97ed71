"""`make demo`: back up and restore a SQLite database in local mode, end to end, narrating each step.

CronJob -> BackupSession -> Job -> `stashplan transfer backup`, then a RestoreSession into a new
database file, then a row-by-row comparison. Needs no cluster and no database server.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter
from rich.console import Console

from stashplan.api import builtin_addons, load_paths
from stashplan.cluster.factory import settings
from stashplan.cluster.local.store import LocalCluster
from stashplan.operator.iteration import LocalControllers, run_once
from stashplan.packaged import specs_dir
from stashplan.phases import SETTLED

DEMO_DIR = "/tmp/stashplan-demo"  # the example manifests point here
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def step(text: str) -> None:
    console.print(f"\n[bold cyan]==> {text}[/bold cyan]")


def run_cli(*args: str) -> str:
    console.print(f"[dim]$ stashplan {' '.join(args)}[/dim]")
    proc = subprocess.run([sys.executable, "-m", "stashplan", *args], capture_output=True, text=True)
    console.print(proc.stdout.rstrip(), markup=False)
    if proc.returncode not in (0, 2):
        console.print(proc.stderr, markup=False)
        raise SystemExit(f"demo failed: stashplan {' '.join(args)} exited {proc.returncode}")
    return proc.stdout


def make_database(path: Path) -> int:
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, joined TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                             total_cents INTEGER, note TEXT);
    """)
    db.executemany("INSERT INTO customers VALUES (?,?,?,?)",
                   [(i, f"Customer {i}", f"c{i}@example.com", f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}")
                    for i in range(1, 2001)])
    db.executemany("INSERT INTO orders VALUES (?,?,?,?)",
                   [(i, 1 + i % 2000, (i * 7919) % 100000, f"order {i} — with ünïcode")
                    for i in range(1, 20001)])
    db.commit()
    count = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    db.close()
    return int(count)


def rows(path: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path)
    out = {t: db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("customers", "orders")}
    db.close()
    return out


def wait_for(cluster: LocalCluster, controllers: LocalControllers, manifests: list[dict], kind: str,
             clock: datetime | None = None, timeout: float = 120) -> dict:
    """Run loop iterations until a session of `kind` reaches a final phase; print each phase change."""
    end, seen = time.monotonic() + timeout, ""
    addons = builtin_addons()
    while time.monotonic() < end:
        run_once(cluster, manifests=manifests, addons=addons, controllers=controllers,
                 now=clock or datetime.now(UTC))
        sessions = cluster.list(kind, "demo")
        if sessions:
            s = sessions[-1]
            phase = (s.get("status") or {}).get("phase", "Pending")
            if phase != seen:
                console.print(f"   {kind} demo/{s['metadata']['name']}: [bold]{phase}[/bold]")
                seen = phase
            if phase in SETTLED:
                return s
        controllers.jobs.wait_all(0.3)
    raise SystemExit(f"demo failed: no {kind} finished within {timeout:.0f}s")


def copy_manifests(src: Path, dest: Path, work: Path) -> Path:
    """The example manifests with their demo folder pointing at `work`."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.y*ml")):
        (dest / path.name).write_text(path.read_text().replace(DEMO_DIR, str(work)))
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stashplan.demo", description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(DEMO_DIR),
                        help=f"folder for the database, repository and state (emptied first; default {DEMO_DIR})")
    work: Path = parser.parse_args(argv).work.resolve()
    started = time.monotonic()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    examples = specs_dir("examples")  # shipped with the package
    backup = copy_manifests(examples / "local-sqlite", work / "manifests" / "local-sqlite", work)
    restore_dir = copy_manifests(examples / "local-sqlite-restore", work / "manifests" / "local-sqlite-restore", work)
    state = work / "state.db"

    step(f"Creating a sample SQLite database at {work / 'app.db'}")
    count = make_database(work / "app.db")
    console.print(f"   2000 customers, {count} orders")

    step("Planning the example manifests (Repository, Secret, AppBinding, BackupConfiguration)")
    run_cli("plan", "-f", str(backup), "--state", str(state))
    step("Applying them")
    run_cli("apply", "-f", str(backup), "--state", str(state), "--auto-approve")

    cluster = LocalCluster(state)
    cs = settings("local", state)
    controllers = LocalControllers.create(cluster, cs.env(), work / "logs")
    manifests = load_paths([backup])
    schedule = cluster.get("CronJob", "demo", "stash-trigger-app-db-backup")["spec"]["schedule"]
    slot = croniter(schedule, datetime.now(UTC)).get_next(datetime)
    step(f"Advancing the clock to the CronJob's next slot ({schedule!r} -> {slot:%H:%M} UTC): it fires "
         "`stashplan trigger`, which creates a BackupSession; the loop creates its Job, which runs "
         "`stashplan transfer backup` (sqlite3 .dump | repository writer)")
    session = wait_for(cluster, controllers, manifests, "BackupSession", clock=slot)
    if session["status"]["phase"] != "Succeeded":
        raise SystemExit(f"demo failed: backup {session['status']}")
    stats = session["status"]["targets"][0]["stats"][0]
    snap = stats["snapshots"][0]
    console.print(f"   snapshot {snap['name'][:8]}: {snap['totalSize']} dumped, {snap['uploaded']} uploaded, "
                  f"took {stats.get('duration', '?')}")
    run_cli("get", "repository", "-n", "demo", "--state", str(state))

    step("Listing the repository's snapshots")
    run_cli("repo", "snapshots", "-f", str(backup / "repository.yaml"))

    step("Restoring the latest snapshot into a new database file through a RestoreSession")
    run_cli("apply", "-f", str(backup), "-f", str(restore_dir), "--state", str(state), "--auto-approve")
    restore = wait_for(cluster, controllers, manifests + load_paths([restore_dir]), "RestoreSession")
    if restore["status"]["phase"] != "Succeeded":
        raise SystemExit(f"demo failed: restore {restore['status']}")

    step("Comparing the two databases row by row")
    original, restored = rows(work / "app.db"), rows(work / "restored.db")
    for table in original:
        same = original[table] == restored[table]
        console.print(f"   {table}: {len(original[table])} rows in app.db, {len(restored[table])} in restored.db"
                      f" -> {'identical' if same else '[red]DIFFERENT[/red]'}")
    if original != restored:
        raise SystemExit("demo failed: the restored database differs")
    controllers.stop()
    cluster.close()
    step(f"Done in {time.monotonic() - started:.1f}s")
    console.print(f"   backup: CronJob -> BackupSession {session['metadata']['name']} -> Job -> transfer: Succeeded\n"
                  f"   restore: RestoreSession app-db-restore -> Job -> transfer: Succeeded, rows identical\n"
                  f"   state: {state}  logs: {work / 'logs'}  repository: {work / 'repository'}")


if __name__ == "__main__":
    main()
