"""Seeded random SIGKILLs of backup, prune, init, forget and repair: afterwards `check --read-data` is
clean (warnings allowed), every surviving snapshot restores byte-identical, and a new backup succeeds.

`make test` runs FUZZ_KILLS=50 kills; `make fuzz` runs many more (FUZZ_KILLS, FUZZ_SEED from the
environment) — the seed is printed on failure so a run can be replayed.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from pathlib import Path

from providers.storage import open_storage
from stashplan.repository import Repository
from tests.fixtures.faults import (
    FAST_KDF,
    FUZZ_PARAMS,
    OPERATIONS,
    PASSWORD,
    Target,
    forkserver,
    run_operation,
    stream,
)

KILLS = int(os.environ.get("FUZZ_KILLS", "50"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
VERIFY_EVERY = 10


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


def test_random_kills_never_lose_a_snapshot_or_leave_the_repository_unusable(tmp_path: Path) -> None:
    rnd = random.Random(SEED)
    url = f"local:{tmp_path}/repo"
    repo = Repository.init(open_storage(url), PASSWORD, FUZZ_PARAMS, kdf=FAST_KDF)
    target = Target(url, repo.key.encryption, repo.key.id_key, repo.id)
    offered: dict[str, bytes] = {}
    for seed in range(4):
        data = stream(seed)
        offered[hashlib.sha256(data).hexdigest()] = data
        repo.backup(io.BytesIO(data))
    ctx = forkserver()
    durations: dict[str, float] = {}
    kills = attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts < KILLS * 6, f"seed {SEED}: operations finish before they can be killed"
        operation = rnd.choice(OPERATIONS)
        seed = rnd.randrange(1000)
        data = stream(seed)
        offered[hashlib.sha256(data).hexdigest()] = data
        init_url = f"local:{tmp_path}/init-{attempts}"
        child = ctx.Process(target=run_operation, args=(target, operation, seed, init_url))
        started = time.monotonic()
        child.start()
        child.join(rnd.uniform(0.0, durations.get(operation, 0.3) * 1.2))
        label = f"seed {SEED}, attempt {attempts}, {operation}"
        if child.is_alive():
            child.kill()
            child.join()
            kills += 1
        else:
            assert child.exitcode == 0, f"{label}: the operation failed on its own (exit {child.exitcode})"
            took = time.monotonic() - started
            durations[operation] = max(took, durations.get(operation, 0.0) * 0.5)
        if operation == "init":
            verify_init(init_url, label)
        if kills and kills % VERIFY_EVERY == 0 and child.exitcode != 0:
            verify(Repository.open(open_storage(url), PASSWORD), offered, tmp_path, label)
    print(f"fault injection: seed {SEED}, {kills} kills in {attempts} operations")
    final = Repository.open(open_storage(url), PASSWORD)
    verify(final, offered, tmp_path, f"seed {SEED}, end")
    last = stream(5000)
    offered[hashlib.sha256(last).hexdigest()] = last
    snap = final.backup(io.BytesIO(last))
    out = io.BytesIO()
    final.restore(snap.id, out)
    assert out.getvalue() == last
    assert final.prune().packs_deleted >= 0
    verify(final, offered, tmp_path, f"seed {SEED}, after a final prune")
