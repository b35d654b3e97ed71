"""Benchmark: backup and restore throughput of a BENCH_BACKENDS_MB (default 300) MB SQL dump through each storage
backend: local, s3 (moto), gcs (fake-gcs-server), azure (Azurite), swift (Swift, tempauth), b2 (b2sdk's
simulator) and rest (rest-server), every emulator on loopback, so the figure is the client's overhead.

Repetitions (BENCH_BACKENDS_REPEAT, default 3) are interleaved (round 1 of every backend, then round 2 ...) so
that other load on the machine spreads over all of them; each round uses a fresh repository. Prints the
median MB/s with min-max, and checks every restore is byte-identical (SHA-256).
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from providers.storage import Storage, open_storage  # noqa: E402
from stashplan.repository.repo import Repository  # noqa: E402
from tests.fixtures import azure, b2, gcs, rest_server, swift  # noqa: E402
from tests.servers import StorageTarget  # noqa: E402

MB = int(os.environ.get("BENCH_BACKENDS_MB", "300"))
REPEAT = int(os.environ.get("BENCH_BACKENDS_REPEAT", "3"))
ONLY = [b for b in os.environ.get("BENCH_BACKENDS", "").split(",") if b]
OUT = ROOT / "bench-out"
PASSWORD = "bench-password"  # throwaway repositories on loopback emulators
BACKENDS = ("local", "s3", "gcs", "azure", "swift", "b2", "rest")


def make_dump(path: Path, size: int) -> None:
    """A SQL dump of `size` bytes: INSERTs of varied rows (compresses about 3x, as real dumps do)."""
    rnd = random.Random(20261130)
    cities = ["Berlin", "Paris", "Lagos", "Lima", "Osaka", "Toronto", "Cairo", "Perth"]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write("CREATE TABLE orders(id bigint primary key, city text, amount numeric, note text);\n")
        written, n = 0, 0
        while written < size:
            rows = []
            for _ in range(1000):
                n += 1
                note = hashlib.md5(str(rnd.random()).encode()).hexdigest()[: rnd.randint(4, 32)]
                rows.append(f"({n}, '{rnd.choice(cities)}', {rnd.random() * 1000:.2f}, '{note}')")
            line = "INSERT INTO orders VALUES " + ", ".join(rows) + ";\n"
            fh.write(line)
            written += len(line)
    tmp.rename(path)


class Sha256Sink:
    """A write-only stream that hashes what the restore writes."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


@contextmanager
def targets(work: Path) -> Iterator[dict[str, Callable[[], Storage]]]:
    """Every backend's emulator running; a factory per backend for a fresh, empty repository place."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

    from tests.fixtures.s3 import ACCESS_KEY, REGION, SECRET_KEY
    from tests.servers import free_port

    wanted = ONLY or list(BACKENDS)
    with ExitStack() as stack:
        made: dict[str, Callable[[], Storage]] = {}
        if "local" in wanted:
            made["local"] = lambda: open_storage(f"local:{work}/local/{uuid.uuid4().hex}")
        if "s3" in wanted:
            port = free_port()
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            moto.start()
            stack.callback(moto.stop)
            env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION}
            import boto3

            boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                         aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY).create_bucket(Bucket="bench")
            made["s3"] = lambda: open_storage(f"s3:http://127.0.0.1:{port}/bench/{uuid.uuid4().hex}", env=env)
        starters: dict[str, Callable[[Path], Any]] = {
            "gcs": gcs.running_gcs, "azure": azure.running_azure, "swift": swift.running_swift,
            "b2": b2.running_b2, "rest": rest_server.running_rest,
        }
        for name, start in starters.items():
            if name in wanted:
                place = work / name
                place.mkdir(parents=True, exist_ok=True)
                target: StorageTarget = stack.enter_context(start(place))
                made[name] = lambda t=target: t.storage(f"bench/{uuid.uuid4().hex}")  # type: ignore[misc]
        yield made


def one_round(storage: Storage, dump: Path, expect: str) -> tuple[float, float]:
    """Seconds to back up the dump into a new repository, and to restore it."""
    repo = Repository.init(storage, PASSWORD)
    start = time.monotonic()
    with open(dump, "rb") as fh:
        repo.backup(fh)  # type: ignore[arg-type]
    backed = time.monotonic() - start
    sink = Sha256Sink()
    start = time.monotonic()
    Repository.open(storage, PASSWORD).restore("latest", sink)  # type: ignore[arg-type]
    restored = time.monotonic() - start
    if sink.hash.hexdigest() != expect:
        raise SystemExit(f"{storage.location}: the restored bytes differ from the dump")
    return backed, restored


def summary(mb: float, seconds: list[float]) -> str:
    rates = sorted(mb / s for s in seconds)
    return f"{statistics.median(rates):7.1f} ({rates[0]:.1f}-{rates[-1]:.1f})"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    dump = OUT / f"backends-dump-{MB}.sql"
    if not dump.exists():
        print(f"generating a {MB} MB SQL dump at {dump} (once; reused by later runs)...", flush=True)
        make_dump(dump, MB * 1024 * 1024)
    with open(dump, "rb") as fh:
        expect = hashlib.file_digest(fh, "sha256").hexdigest()  # type: ignore[arg-type]
    size_mb = dump.stat().st_size / 1e6
    work = OUT / f"backends-{os.getpid()}"
    times: dict[str, tuple[list[float], list[float]]] = {}
    with targets(work) as made:
        for round_ in range(1, REPEAT + 1):
            for name, fresh in made.items():
                backed, restored = one_round(fresh(), dump, expect)
                times.setdefault(name, ([], []))
                times[name][0].append(backed)
                times[name][1].append(restored)
                print(f"round {round_} {name:6s} backup {size_mb / backed:6.1f} MB/s  "
                      f"restore {size_mb / restored:6.1f} MB/s", flush=True)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    print(f"\n{size_mb:.0f} MB dump, {REPEAT} interleaved rounds, emulators on loopback (the client's overhead); "
          "median MB/s (min-max)")
    print(f"{'backend':8s} {'backup':>22s} {'restore':>22s}")
    for name, (backups, restores) in times.items():
        print(f"{name:8s} {summary(size_mb, backups):>22s} {summary(size_mb, restores):>22s}")


if __name__ == "__main__":
    main()
