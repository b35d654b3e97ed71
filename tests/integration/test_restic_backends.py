"""A restic repository on every backend stashplan supports: made by the restic binary, copied byte for byte
through stashplan's own Storage (s3 on moto, gcs on fake-gcs-server, azure on Azurite, swift, b2's
simulator, rest on rest-server), then listed, restored (a stream and a directory) and checked from there;
on rest-server also written by restic itself over `rest:http://...`."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from providers.storage import Storage, open_storage
from stashplan.repository.opening import open_repository
from stashplan.repository.restic.repo import ResticRepository
from tests.fixtures.restic import Restic, make_volume, restic_binaries, sample, tree_facts
from tests.fixtures.s3 import S3Bucket
from tests.servers import StorageTarget

PROVIDERS = ["s3", "gcs", "azure", "swift", "b2", "rest"]


def _newest() -> Path:
    binaries = restic_binaries()
    if not binaries:  # .ci/services.sh installs restic: its absence is a broken machine, not a reason to pass
        pytest.fail("no restic binary (run .ci/services.sh)")
    return binaries[-1][1]


def _fill(r: Restic, root: Path) -> tuple[bytes, Path]:
    """A --stdin snapshot (several blobs) and a snapshot of a small volume; returns both sources."""
    stream = sample(31, 1_500_000)
    r.backup_stdin(stream, tags=("daily",))
    volume = make_volume(root)
    r("backup", str(volume), "--host", "volume-host")
    return stream, volume


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Restic, bytes, Path]:
    """One repository in restic's format version 2 (zstd), by the newest restic here, on local disk."""
    root = tmp_path_factory.mktemp("restic-backends")
    r = Restic(_newest(), root / "repo", root / "cache")
    r("init", "--repository-version", "2")
    stream, volume = _fill(r, root)
    return r, stream, volume


def _storage(request: pytest.FixtureRequest, provider: str) -> Storage:
    prefix = f"restic-copy/{uuid.uuid4().hex[:12]}"
    if provider == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        return open_storage(bucket.repo_url(prefix), env=bucket.endpoint.env())
    target: StorageTarget = request.getfixturevalue(f"{provider}_target")
    return target.storage(prefix)  # type: ignore[no-any-return]


def _read_everything(storage: Storage, r: Restic, stream: bytes, volume: Path, out: Path) -> None:
    """What a user does with a Stash repository: list, restore the dump and the volume, check every pack."""
    opened = open_repository(storage, r.password)
    assert isinstance(opened, ResticRepository) and opened.version == 2
    listed = {s.id: s for s in opened.snapshots()}
    assert set(listed) == {s["id"] for s in r.snapshots()}
    dump = next(s for s in listed.values() if s.filename == "dumpfile.sql")
    buf = io.BytesIO()
    opened.restore(dump.id, buf)
    assert buf.getvalue() == stream
    tree = next(s for s in listed.values() if s.hostname == "volume-host")
    _snap, done = opened.restore_directory(tree.id, out, path=str(volume))
    assert tree_facts(out) == tree_facts(volume) and done.files == 5
    result = opened.check(read_data=True)
    assert result.ok, result.errors
    assert result.blobs_read > 0 and not result.warnings
    assert not list(storage.list("locks/"))  # our restic lock is gone again


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_restic_repository_copied_onto_each_backend_reads_back(
    request: pytest.FixtureRequest, made: tuple[Restic, bytes, Path], provider: str, tmp_path: Path
) -> None:
    r, stream, volume = made
    storage = _storage(request, provider)
    for path in sorted(p for p in r.repo.rglob("*") if p.is_file()):
        storage.put(str(path.relative_to(r.repo)), path.read_bytes())
    _read_everything(storage, r, stream, volume, tmp_path / "restored")


def test_restic_writing_to_rest_server_directly_is_read(rest_target: StorageTarget, tmp_path: Path) -> None:
    prefix = f"restic-direct/{uuid.uuid4().hex[:12]}"
    url = urlsplit(rest_target.backend(prefix)["rest"]["url"])
    user, password = rest_target.secret["REST_SERVER_USERNAME"], rest_target.secret["REST_SERVER_PASSWORD"]
    with_auth = urlunsplit(url._replace(netloc=f"{user}:{password}@{url.netloc}"))
    r = Restic(_newest(), tmp_path / "unused", tmp_path / "cache", url=f"rest:{with_auth}")
    r("init", "--repository-version", "2")
    stream, volume = _fill(r, tmp_path)
    _read_everything(rest_target.storage(prefix), r, stream, volume, tmp_path / "restored")
