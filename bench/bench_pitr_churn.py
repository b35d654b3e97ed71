"""What a second PostgreSQL base backup adds after 1% churn: stashplan (`stashplan pg basebackup`, deduplicated
against the first) next to its full one and to pgBackRest's incremental on the same database, in BENCH_REPS
rounds (default 3; medians with min-max). Bytes, not time: the figures do not depend on the machine's load.

Each round, on a PRIVATE PostgreSQL 15 (initdb under bench-out/pitr-churn/, free loopback port, postgres OS user,
trust on loopback, wal_level=replica, archive_mode=on, archive_command = pgBackRest archive-push):
- `pgbench -i -s BENCH_PITR_SCALE` (default 10: 1,000,000 accounts), CHECKPOINT;
- full backups: `stashplan pg basebackup` (pg_basebackup -Ft -X none --checkpoint=fast into a fresh repository,
  `repo init` defaults: FastCDC 128 KiB / 512 KiB / 2 MiB, a chunk also ending wherever a file of the tar begins,
  zstd 1, AES-256-GCM) and, into a second fresh
  repository, the same with small chunks (FastCDC 8 KiB / 32 KiB / 128 KiB) to show what chunk size does;
  pgBackRest `backup --type=full` (zst level 1, start-fast, one process);
- churn: `pgbench -n -c 1 -t (scale x 1000) --random-seed=<round>`, TPC-B, so the transactions update about 1%
  of the accounts (with replacement: 0.995% distinct), then CHECKPOINT;
- second backups: `stashplan pg basebackup` again into both repositories (the bytes it adds = packs uploaded after
  deduplication and compression, `added_size`, and the growth of the repository directory) and pgBackRest
  `backup --type=incr` (its `repository.delta`: the bytes that backup stored).
Then, to show where deduplication inside files pays: one UPDATE of the first 1% of the accounts (contiguous
rows, so 1% of the table's pages), CHECKPOINT, a third `stashplan pg basebackup` and another pgBackRest `incr`.
Also printed, as the bound any chunking could reach: the 8 KiB pages that differ between the two base backups'
tar streams (member by member, read back from the repository), before compression.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_time_to_usable as ttu  # noqa: E402  (its private PostgreSQL and pgBackRest set-up)
from harness import REPS, Goals, Spread  # noqa: E402

from providers.storage.local import LocalStorage  # noqa: E402
from stashplan.repository.layout import Params  # noqa: E402
from stashplan.repository.repo import Repository  # noqa: E402

WORK = ROOT / "bench-out" / "pitr-churn"
ttu.WORK = WORK  # the private instances' sockets, pgBackRest's config, repository, lock and log go here
PASSWORD = "bench-password"
SMALL = Params(chunk_min=8 * 1024, chunk_avg=32 * 1024, chunk_max=128 * 1024)
PAGE = 8192
MiB = 2**20


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Stashplan:
    """One stashplan repository taking base backups of `source`."""

    def __init__(self, name: str, source: ttu.Instance, params: Params) -> None:
        self.path = WORK / name
        shutil.rmtree(self.path, ignore_errors=True)
        Repository.init(LocalStorage(self.path), PASSWORD, params).close()
        self.source = source
        self.env = {**os.environ, "STASHPLAN_PASSWORD": PASSWORD}

    def basebackup(self) -> tuple[str, int, int]:
        """(snapshot id, bytes uploaded, growth of the repository directory)."""
        before = dir_bytes(self.path)
        out = ttu.sh(f"{ttu.STASHPLAN} pg basebackup -r local:{self.path} --host 127.0.0.1 --port {self.source.port} "
                     f"--user postgres --pg-basebackup {ttu.PG_BIN}/pg_basebackup --json", env=self.env)
        doc = json.loads(out)
        return str(doc["id"]), int(doc["added_size"]), dir_bytes(self.path) - before

    def pages(self, snapshot: str) -> dict[str, list[bytes]]:
        """Per tar member, the digest of each 8 KiB page of the base backup's stream."""
        tar_path = WORK / "base.tar"
        with Repository.open(LocalStorage(self.path), PASSWORD) as repo, tar_path.open("wb") as out:
            repo.restore(snapshot, out)
        found: dict[str, list[bytes]] = {}
        with tarfile.open(tar_path) as tar:
            for member in tar:
                if member.isreg():
                    reader = tar.extractfile(member)
                    assert reader is not None
                    found[member.name] = list(_digests(reader))
        tar_path.unlink()
        return found


def _digests(reader: object) -> Iterator[bytes]:
    while block := reader.read(PAGE):  # type: ignore[attr-defined]
        yield hashlib.blake2b(block, digest_size=16).digest()


def changed_pages(first: dict[str, list[bytes]], second: dict[str, list[bytes]]) -> int:
    """Pages of the second backup that the first does not hold at the same place of the same file."""
    changed = 0
    for name, pages in second.items():
        old = first.get(name, [])
        changed += sum(1 for i, d in enumerate(pages) if i >= len(old) or old[i] != d)
    return changed


def one_round(round_no: int, scale: int) -> dict[str, float]:
    for folder in ("pgbackrest-repo", "lock", "log", "spool"):
        shutil.rmtree(WORK / folder, ignore_errors=True)
    source = ttu.Instance(WORK / "source", ttu.free_port())
    pgbr = ttu.PgBackRest(source)
    settings = ("-c wal_level=replica -c archive_mode=on", f"-c {ttu.shlex.quote(pgbr.archive_command)}")
    with ttu.running(source, *settings):
        ttu.sh(f"pgbench {source.conn} -i -q -s {scale} postgres")
        source.sql("CHECKPOINT")
        pgbr.create()
        big, small = Stashplan("stashplan-repo", source, Params()), Stashplan("stashplan-small", source, SMALL)
        first, full_added, full_grown = big.basebackup()
        _, small_full, _ = small.basebackup()
        ttu.sh(f"{pgbr.cmd} --type=full --process-max=1 backup")
        accounts = int(source.sql("SELECT count(*) FROM pgbench_accounts"))
        ttu.sh(f"pgbench {source.conn} -n -c 1 -t {scale * 1000} --random-seed={round_no + 1} postgres")
        source.sql("CHECKPOINT")
        second, added, grown = big.basebackup()
        _, small_added, _ = small.basebackup()
        ttu.sh(f"{pgbr.cmd} --type=incr --process-max=1 backup")
        info = pgbr.info()
        full_pgbr, incr_pgbr = (int(b["info"]["repository"]["delta"]) for b in info[-2:])  # type: ignore[index]
        pages = changed_pages(big.pages(first), big.pages(second))
        source.sql(f"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= {accounts // 100}")
        source.sql("CHECKPOINT")
        _, local_added, _ = big.basebackup()
        ttu.sh(f"{pgbr.cmd} --type=incr --process-max=1 backup")
        local_pgbr = int(pgbr.info()[-1]["info"]["repository"]["delta"])  # type: ignore[index]
        cluster = ttu.size_mib(source.data)
    return {
        "accounts": accounts, "cluster MiB": cluster,
        "stashplan full MiB": full_added / MiB, "stashplan second MiB": added / MiB,
        "stashplan second, repository growth MiB": grown / MiB, "stashplan full, repository growth MiB": full_grown / MiB,
        "stashplan 32 KiB chunks: full MiB": small_full / MiB, "stashplan 32 KiB chunks: second MiB": small_added / MiB,
        "pgBackRest full MiB": full_pgbr / MiB, "pgBackRest incr MiB": incr_pgbr / MiB,
        "changed 8 KiB pages, uncompressed MiB": pages * PAGE / MiB,
        "second / pgBackRest incr": added / incr_pgbr,
        "32 KiB chunks second / pgBackRest incr": small_added / incr_pgbr,
        "contiguous 1%: stashplan third MiB": local_added / MiB, "contiguous 1%: pgBackRest incr MiB": local_pgbr / MiB,
        "contiguous 1%: third / pgBackRest incr": local_added / local_pgbr,
    }


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(WORK, "postgres")
    scale = int(os.environ.get("BENCH_PITR_SCALE", "10"))
    print(f"base backup churn benchmark; {ttu.sh('pgbackrest version')}; {ttu.sh(f'{ttu.PG_BIN}/postgres --version')}")
    doc = __doc__ or ""
    print("  " + doc[doc.index("Each round"):].strip().replace("\n", "\n  "))
    rounds: list[dict[str, float]] = []
    try:
        for i in range(REPS):
            rounds.append(one_round(i, scale))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in rounds[-1].items() ),
                  flush=True)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"\npgbench scale {scale}; {REPS} rounds (median, min-max):")
    for key in rounds[0]:
        if key != "accounts":
            print(f"  {key:<46}{Spread.of([r[key] for r in rounds]).fmt()}")
    goals = Goals()
    goals.check("stashplan's second base backup / pgBackRest's incremental, bytes added after 1% churn",
                Spread.of([r["second / pgBackRest incr"] for r in rounds]), 1.0, at_most=True)
    goals.note("with 32 KiB chunks", Spread.of([r["32 KiB chunks second / pgBackRest incr"] for r in rounds]).fmt("x"))
    goals.note("after a contiguous 1% of accounts is updated, stashplan / pgBackRest incremental",
               Spread.of([r["contiguous 1%: third / pgBackRest incr"] for r in rounds]).fmt("x"))
    goals.note("median accounts", f"{statistics.median(r['accounts'] for r in rounds):.0f}")
    goals.show()


if __name__ == "__main__":
    main()
