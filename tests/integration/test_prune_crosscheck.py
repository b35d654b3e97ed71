"""The cross-checks prune can make on listings whose answers carry no count (restic's rest-server here):
a well-formed `index/` listing that leaves out the index file of packs a snapshot still uses, or a
`snapshots/` listing that loses a file between planning and executing, is caught before anything is
deleted (through a proxy that drops entries from the JSON answer, a lie the backend cannot see)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable

import pytest

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository import Repository, RetentionPolicy
from stashplan.repository.crosscheck import require_indexed, require_still_listed, unindexed
from stashplan.repository.index import load_index
from stashplan.repository.layout import DATA, INDEX, SNAPSHOTS, pack_id_of
from stashplan.repository.prune import used_blobs
from tests.fixtures.cutting_proxy import CuttingProxy, rest_listing
from tests.fixtures.faults import FAST_KDF, FUZZ_PARAMS, PASSWORD, stream
from tests.servers import StorageTarget


def _without(names: set[str]) -> Callable[[bytes], bytes]:
    """Rewrites a rest-server v2 listing without the entries whose object names are in `names`."""
    ids = {n.rsplit("/", 1)[-1] for n in names}
    return lambda body: json.dumps([e for e in json.loads(body) if e["name"] not in ids]).encode()


@pytest.fixture
def through_proxy(
    rest_target: StorageTarget, cutting_proxy: Callable[[str], CuttingProxy]
) -> tuple[Storage, CuttingProxy]:
    path = f"crosscheck-{uuid.uuid4().hex[:12]}"
    direct = rest_target.backend(path)["rest"]["url"]
    proxy = cutting_proxy(direct.rsplit(f"/{path}/", 1)[0])
    return rest_target.storage_at({"url": f"{proxy.url()}/{path}/"}, rest_target.secret), proxy


def test_an_index_listing_short_of_a_file_the_snapshots_use_is_caught(
    through_proxy: tuple[Storage, CuttingProxy],
) -> None:
    storage, proxy = through_proxy
    repo = Repository.init(storage, PASSWORD, FUZZ_PARAMS, kdf=FAST_KDF)
    repo.backup(io.BytesIO(stream(0)))
    first_index = {i.name for i in storage.list(INDEX)}
    repo.backup(io.BytesIO(stream(1)))  # shares most chunks with the first: they stay in its index file
    repo.forget(RetentionPolicy(keep_last=1))
    stored = {pack_id_of(i.name): i.size for i in storage.list(DATA)}

    proxy.arm(rest_listing("index"), _without(first_index))
    index = load_index(storage, repo.key, stored=stored)
    used = used_blobs(storage, repo.key, index)  # the kept snapshot's content list is in the listed file
    assert proxy.cuts == 1 and unindexed(used, index)
    with pytest.raises(RepositoryError, match="the index/ listing may be incomplete; nothing deleted") as info:
        require_indexed(used, index)
    assert "\n" not in str(info.value)

    proxy.disarm()
    index = load_index(storage, repo.key, stored=stored)
    require_indexed(used_blobs(storage, repo.key, index), index)


def test_a_snapshot_listed_when_planning_and_missing_when_executing_is_caught(
    through_proxy: tuple[Storage, CuttingProxy],
) -> None:
    storage, proxy = through_proxy
    repo = Repository.init(storage, PASSWORD, FUZZ_PARAMS, kdf=FAST_KDF)
    for seed in (0, 4):
        repo.backup(io.BytesIO(stream(seed)))
    planned = {i.name for i in storage.list(SNAPSHOTS)}
    assert len(planned) == 2
    proxy.arm(rest_listing("snapshots"), _without({min(planned)}))
    with pytest.raises(RepositoryError, match=r"1 of the 2 files listed under snapshots/ when planning"):
        require_still_listed(storage, SNAPSHOTS, planned)
    proxy.disarm()
    require_still_listed(storage, SNAPSHOTS, planned)
