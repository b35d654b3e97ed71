"""Seeded random repository operations (backup, forget, prune, check) on S3 (moto) through a proxy that cuts
the bodies of random listings (closed, empty, short, entries dropped; once or on every retry): each operation
succeeds or fails with a one-line IncompleteListing, and afterwards, read on the server directly, the
repository checks clean and every snapshot restores to a stream we offered, none lost but by forget.

`make test` runs FUZZ_CUTS=24 operations; FUZZ_SEED replays a run (the seed is printed on failure).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Callable

from providers.storage import IncompleteListing, RetryingStorage, open_storage
from stashplan.repository import Repository, RetentionPolicy
from tests.fixtures.cutting_proxy import Cut, CuttingProxy, drop_s3_entries, s3_listing
from tests.fixtures.faults import FAST_KDF, FUZZ_PARAMS, PASSWORD, stream
from tests.fixtures.s3 import S3Bucket

CUTS = int(os.environ.get("FUZZ_CUTS", "24"))
SEED = int(os.environ.get("FUZZ_SEED", "20261206"))
PREFIXES = ("data/", "index/", "snapshots/", "locks/", "keys/")
KINDS: tuple[Cut | Callable[[bytes], bytes], ...] = (Cut.CLOSE, Cut.EMPTY, Cut.SHORT, drop_s3_entries)
OPERATIONS = ("backup", "backup", "prune", "prune", "forget", "check")


def _verify(repo: Repository, expected: set[str], offered: dict[str, bytes], label: str) -> set[str]:
    """The repository read directly: a clean check, every snapshot restoring to an offered stream, none
    of `expected` missing. The snapshot ids now there."""
    result = repo.check(read_data=True)
    assert result.ok, f"{label}: {result.errors}"
    now = {s.id for s in repo.snapshots()}
    assert expected <= now, f"{label}: snapshots lost: {sorted(expected - now)}"
    for sid in now:
        out = io.BytesIO()
        repo.restore(sid, out)
        assert offered.get(hashlib.sha256(out.getvalue()).hexdigest()) == out.getvalue(), label
    return now


def test_random_cut_listings_never_lose_a_snapshot(
    s3_bucket: S3Bucket, cutting_proxy: Callable[[str], CuttingProxy]
) -> None:
    rnd = random.Random(SEED)
    env = s3_bucket.endpoint.env()
    proxy = cutting_proxy(s3_bucket.endpoint.url)
    direct = Repository.init(open_storage(s3_bucket.repo_url("repo"), env=env), PASSWORD, FUZZ_PARAMS, kdf=FAST_KDF)
    cut_storage = open_storage(f"s3:{proxy.url()}/{s3_bucket.name}/repo", env=env)
    assert isinstance(cut_storage, RetryingStorage)
    fast = RetryingStorage(cut_storage.inner, attempts=3, base_delay=0.001)
    repo = Repository(fast, direct.key, direct.params, direct.id)
    offered: dict[str, bytes] = {}
    expected: set[str] = set()
    failures = 0
    for step in range(CUTS):
        operation = rnd.choice(OPERATIONS)
        seed = rnd.randrange(1000)
        prefix = rnd.choice(PREFIXES)
        kind = rnd.choice(KINDS)
        times = rnd.choice((1, None))  # once (the retry lists again) or on every attempt
        label = f"seed {SEED}, step {step}: {operation} with {prefix} cut {getattr(kind, 'name', 'drop')} x{times}"
        data = stream(seed)
        offered[hashlib.sha256(data).hexdigest()] = data
        proxy.arm(s3_listing(prefix), kind, times)
        try:
            if operation == "backup":
                expected.add(repo.backup(io.BytesIO(data), hostname=f"host-{seed % 2}").id)
            elif operation == "prune":
                repo.prune()
            elif operation == "forget":
                removed = repo.forget(RetentionPolicy(keep_last=3), prune=seed % 2 == 0).remove
                expected -= {s.id for s in removed}
            else:
                assert repo.check().ok, label
        except IncompleteListing as exc:
            failures += 1
            assert "\n" not in str(exc) and f"listing {prefix}" in str(exc), f"{label}: {exc}"
            if operation == "forget":  # it may have removed snapshots before its prune failed
                expected &= {s.id for s in direct.snapshots()}
        finally:
            proxy.disarm()
        expected = _verify(direct, expected, offered, label)
    print(f"cut listings: seed {SEED}, {CUTS} operations, {proxy.cuts} responses cut, {failures} failed")
    assert failures and proxy.cuts > failures, f"seed {SEED}: the cuts were never both retried and fatal"
