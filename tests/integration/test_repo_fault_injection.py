"""Seeded random SIGKILLs of backup, prune, init, forget and repair: afterwards `check --read-data` is
clean (warnings allowed), every surviving snapshot restores byte-identical, and a new backup succeeds.
A fifth of the kills fall on a repository on S3 (moto) reached through a proxy that cuts the bodies of
random listings during every prune and forget: such an operation is killed, or fails with a one-line
IncompleteListing, or succeeds; the invariant is the same, checked on the server directly.

`make test` runs FUZZ_KILLS=50 kills; `make fuzz` runs many more (FUZZ_KILLS, FUZZ_SEED from the
environment) — the seed is printed on failure so a run can be replayed.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from providers.storage import open_storage
from stashplan.repository import Repository
from tests.fixtures.cutting_proxy import Cut, CuttingProxy, drop_s3_entries, s3_listing
from tests.fixtures.faults import (
    CUT_EXIT,
    FAST_KDF,
    FUZZ_PARAMS,
    OPERATIONS,
    PASSWORD,
    Target,
    forkserver,
    run_operation,
    stream,
)
from tests.fixtures.s3 import S3Bucket

KILLS = int(os.environ.get("FUZZ_KILLS", "50"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
VERIFY_EVERY = 10
CUT_KILLS = max(1, KILLS // 10)  # of KILLS, those on S3 through the cutting proxy
CUT_OPERATIONS = ("prune", "forget")  # run with a random listing cut armed
S3_OPERATIONS = ("backup", "backup", "prune", "prune", "forget", "repair index")
CUT_PREFIXES = ("data/", "index/", "snapshots/", "locks/")
CUTS: tuple[Cut | Callable[[bytes], bytes], ...] = (Cut.CLOSE, Cut.EMPTY, Cut.SHORT, drop_s3_entries)


def verify(repo: Repository, offered: dict[str, bytes], tmp: Path, label: str) -> None:
    """The repository after kills: clean check, every snapshot restores to a stream we offered."""
    result = repo.check(read_data=True)
    assert result.ok, f"{label}: {result.errors}"
    for snap in repo.snapshots():
        out = io.BytesIO()
        repo.restore(snap.id, out)
        assert offered.get(hashlib.sha256(out.getvalue()).hexdigest()) == out.getvalue(), label
    assert not repo.warnings, f"{label}: {repo.warnings}"


def verify_init(url: str, label: str) -> None:
    """An init killed anywhere, then retried, leaves one openable repository that takes a backup."""
    storage = open_storage(url)
    repo = Repository.open_or_init(storage, PASSWORD, FUZZ_PARAMS, kdf=FAST_KDF)
    snap = repo.backup(io.BytesIO(b"after a killed init"))
    again = Repository.open(storage, PASSWORD)
    out = io.BytesIO()
    again.restore(snap.id, out)
    assert out.getvalue() == b"after a killed init", label
    assert len(list(storage.list("keys/"))) == 1, label


@dataclass
class Run:
    """One repository under kills: where children reach it, how the test reads it directly, what was offered."""

    target: Target
    direct_url: str
    env: dict[str, str] | None
    tmp: Path
    proxy: CuttingProxy | None = None
    offered: dict[str, bytes] = field(default_factory=dict)
    cut_failures: int = 0

    def direct(self) -> Repository:
        return Repository.open(open_storage(self.direct_url, env=self.env), PASSWORD)


def start(url: str, env: dict[str, str] | None, tmp: Path, via: str | None = None,
          proxy: CuttingProxy | None = None) -> Run:
    """A new repository at `url` holding four snapshots; children reach it at `via` (default `url`)."""
    repo = Repository.init(open_storage(url, env=env), PASSWORD, FUZZ_PARAMS, kdf=FAST_KDF)
    run = Run(Target(via or url, repo.key.encryption, repo.key.id_key, repo.id, env), url, env, tmp, proxy)
    for seed in range(4):
        data = stream(seed)
        run.offered[hashlib.sha256(data).hexdigest()] = data
        repo.backup(io.BytesIO(data))
    return run


def kill_loop(run: Run, rnd: random.Random, kills_wanted: int, name: str,
              operations: tuple[str, ...] = OPERATIONS, first_guess: float = 0.3) -> None:
    """Random operations in children, `kills_wanted` of them SIGKILLed at random moments; with a proxy, every
    prune and forget runs with a random listing cut armed."""
    ctx = forkserver()
    durations: dict[str, float] = {}
    kills = attempts = 0
    while kills < kills_wanted:
        attempts += 1
        assert attempts < kills_wanted * 6, f"seed {SEED}, {name}: operations finish before they can be killed"
        operation = rnd.choice(operations)
        seed = rnd.randrange(1000)
        data = stream(seed)
        run.offered[hashlib.sha256(data).hexdigest()] = data
        init_url = f"local:{run.tmp}/{name}-init-{attempts}"
        label = f"seed {SEED}, {name}, attempt {attempts}, {operation}"
        if run.proxy is not None and operation in CUT_OPERATIONS:
            prefix, cut, times = rnd.choice(CUT_PREFIXES), rnd.choice(CUTS), rnd.choice((1, None))
            label += f" with {prefix} cut {getattr(cut, 'name', 'drop')} x{times}"
            run.proxy.arm(s3_listing(prefix), cut, times)
        child = ctx.Process(target=run_operation, args=(run.target, operation, seed, init_url))
        started = time.monotonic()
        child.start()
        child.join(rnd.uniform(0.0, durations.get(operation, first_guess) * 1.2))
        if child.is_alive():
            child.kill()
            child.join()
            kills += 1
        elif child.exitcode == CUT_EXIT and run.proxy is not None and operation in CUT_OPERATIONS:
            run.cut_failures += 1  # stopped at the cut listing with one line, as it must
        else:
            assert child.exitcode == 0, f"{label}: the operation failed on its own (exit {child.exitcode})"
            took = time.monotonic() - started
            durations[operation] = max(took, durations.get(operation, 0.0) * 0.5)
        if run.proxy is not None:
            run.proxy.disarm()
        if operation == "init":
            verify_init(init_url, label)
        if kills and kills % VERIFY_EVERY == 0 and child.exitcode != 0:
            verify(run.direct(), run.offered, run.tmp, label)
    print(f"fault injection ({name}): seed {SEED}, {kills} kills in {attempts} operations"
          + (f", {run.proxy.cuts if run.proxy else 0} listings cut, {run.cut_failures} stopped by a cut"
             if run.proxy else ""))


def finish(run: Run, label: str) -> None:
    """The repository after the loop: clean, every snapshot restores; a backup and a prune still work."""
    final = run.direct()
    verify(final, run.offered, run.tmp, f"{label}, end")
    last = stream(5000)
    run.offered[hashlib.sha256(last).hexdigest()] = last
    snap = final.backup(io.BytesIO(last))
    out = io.BytesIO()
    final.restore(snap.id, out)
    assert out.getvalue() == last
    assert final.prune().packs_deleted >= 0
    verify(final, run.offered, run.tmp, f"{label}, after a final prune")


def test_random_kills_never_lose_a_snapshot_or_leave_the_repository_unusable(
    tmp_path: Path, s3_bucket: S3Bucket, cutting_proxy: Callable[[str], CuttingProxy]
) -> None:
    rnd = random.Random(SEED)
    local = start(f"local:{tmp_path}/repo", None, tmp_path)
    kill_loop(local, rnd, KILLS - CUT_KILLS, "local")
    finish(local, f"seed {SEED}, local")

    proxy = cutting_proxy(s3_bucket.endpoint.url)
    cut = start(s3_bucket.repo_url("repo"), s3_bucket.endpoint.env(), tmp_path,
                via=f"s3:{proxy.url()}/{s3_bucket.name}/repo", proxy=proxy)
    kill_loop(cut, rnd, CUT_KILLS, "s3 through cuts", S3_OPERATIONS, first_guess=1.0)
    for _ in range(5):  # on a slow machine every armed operation may be killed before it lists: go on a little
        if proxy.cuts:
            break
        kill_loop(cut, rnd, CUT_KILLS, "s3 through cuts, until one listing is cut", S3_OPERATIONS, first_guess=1.0)
    assert proxy.cuts, f"seed {SEED}: no listing was cut"
    finish(cut, f"seed {SEED}, s3 through cuts")
