"""`stashplan repo prune` through a proxy that cuts the body of the snapshots listing (S3 on moto, restic's
rest-server): the listing is never read as "no snapshots", so prune exits 1 with a one-line error,
deletes nothing (the object set read on the server itself is unchanged), and every snapshot restores."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from providers.storage import open_storage
from stashplan.repository import Repository
from stashplan.repository.cli import app
from tests.fixtures.cutting_proxy import Cut, CuttingProxy, Request, drop_s3_entries, rest_listing, s3_listing
from tests.fixtures.s3 import S3Bucket
from tests.servers import StorageTarget

runner = CliRunner()
PASSWORD = "cut-listing-pass"
CHEAP_KDF = (2**14, 8, 1)


@dataclass
class Setup:
    url: str  # the repository through the proxy
    proxy: CuttingProxy
    objects: Callable[[], set[tuple[str, int]]]  # (name, size) of every object, read on the server directly
    snapshots_listing: Callable[[Request], bool]


def _s3_setup(request: pytest.FixtureRequest, proxy_for: Callable[[str], CuttingProxy],
              monkeypatch: pytest.MonkeyPatch) -> Setup:  # fmt: skip
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    for key, value in bucket.endpoint.env().items():
        monkeypatch.setenv(key, value)
    proxy = proxy_for(bucket.endpoint.url)
    client = bucket.endpoint.client()

    def objects() -> set[tuple[str, int]]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name)
        return {(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])}

    return Setup(f"s3:{proxy.url()}/{bucket.name}/repo", proxy, objects, s3_listing("snapshots/"))


def _rest_setup(request: pytest.FixtureRequest, proxy_for: Callable[[str], CuttingProxy],
                monkeypatch: pytest.MonkeyPatch) -> Setup:  # fmt: skip
    target: StorageTarget = request.getfixturevalue("rest_target")
    for key, value in target.secret.items():
        monkeypatch.setenv(key, value)
    path = f"prune-{uuid.uuid4().hex[:12]}"
    direct = target.backend(path)["rest"]["url"]
    proxy = proxy_for(direct.rsplit(f"/{path}/", 1)[0])
    auth = (target.secret["REST_SERVER_USERNAME"], target.secret["REST_SERVER_PASSWORD"])

    def objects() -> set[tuple[str, int]]:
        found = set()
        for kind in ("data", "index", "keys", "locks", "snapshots"):
            resp = requests.get(f"{direct}{kind}/", auth=auth, headers={"Accept": "application/vnd.x.restic.rest.v2"},
                                timeout=30)
            resp.raise_for_status()
            found |= {(f"{kind}/{item['name']}", item["size"]) for item in resp.json()}
        return found

    return Setup(f"rest:{proxy.url()}/{path}/", proxy, objects, rest_listing("snapshots"))


@pytest.fixture(params=["s3", "rest"])
def setup(
    request: pytest.FixtureRequest, cutting_proxy: Callable[[str], CuttingProxy], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    monkeypatch.setenv("STASHPLAN_PASSWORD", PASSWORD)
    make = _s3_setup if request.param == "s3" else _rest_setup
    yield make(request, cutting_proxy, monkeypatch)


def _payload(seed: int) -> bytes:
    rnd = random.Random(seed)
    return b"".join(b"%d\t%d\n" % (n, rnd.randint(0, 10**9)) for n in range(40_000))


def _backups(url: str) -> dict[str, bytes]:
    """Two snapshots of different dumps; their short ids and contents."""
    Repository.init(open_storage(url), PASSWORD, kdf=CHEAP_KDF).close()
    made = {}
    for seed in (1, 2):
        payload = _payload(seed)
        result = runner.invoke(app, ["backup", "--stdin", "-r", url, "--host", "db", "--json"], input=payload)
        assert result.exit_code == 0, result.output
        made[json.loads(result.stdout)["short_id"]] = payload
    return made


def _assert_every_snapshot_restores(url: str, made: dict[str, bytes], tmp_path: Path) -> None:
    for short_id, payload in made.items():
        target = tmp_path / f"{short_id}.sql"
        restored = runner.invoke(app, ["restore", short_id, "-r", url, "--target", str(target)])
        assert restored.exit_code == 0, restored.output
        assert target.read_bytes() == payload


def _cuts(setup: Setup) -> list[Cut | Callable[[bytes], bytes]]:
    kinds: list[Cut | Callable[[bytes], bytes]] = [Cut.EMPTY, Cut.CLOSE, Cut.SHORT]
    if setup.url.startswith("s3:"):
        kinds.append(drop_s3_entries)  # well-formed XML, KeyCount unchanged: only the count tells
    return kinds


def test_prune_through_a_cut_snapshots_listing_deletes_nothing(setup: Setup, tmp_path: Path) -> None:
    made = _backups(setup.url)
    before = setup.objects()
    assert sum(1 for name, _ in before if "/data/" in f"/{name}") >= 2
    for cut in _cuts(setup):
        setup.proxy.arm(setup.snapshots_listing, cut)
        cuts_before = setup.proxy.cuts
        pruned = runner.invoke(app, ["prune", "-r", setup.url])
        setup.proxy.disarm()
        what = getattr(cut, "name", getattr(cut, "__name__", ""))
        assert pruned.exit_code == 1, f"{what}: {pruned.output}"
        errors = [line for line in pruned.stderr.strip().splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "listing snapshots/ is incomplete" in errors[0], f"{what}: {pruned.stderr}"
        assert pruned.stderr.strip().splitlines()[-1] == errors[0]  # retries are logged before it, if at all
        assert setup.proxy.cuts - cuts_before > 1, what  # the shared wrapper listed again before giving up
        assert setup.objects() == before, what
    _assert_every_snapshot_restores(setup.url, made, tmp_path)
    pruned = runner.invoke(app, ["prune", "-r", setup.url])  # the same prune with honest listings
    assert pruned.exit_code == 0 and "0 packs deleted" in pruned.stdout, pruned.output
    _assert_every_snapshot_restores(setup.url, made, tmp_path)


def _drop_entry(position: int) -> Callable[[bytes], bytes]:
    """A rest-server v2 listing without one of its entries: well-formed JSON, no count to tell."""

    def drop(body: bytes) -> bytes:
        items = json.loads(body)
        return json.dumps(items[:position] + items[position + 1 :]).encode()

    drop.__name__ = f"drop_entry_{position}"
    return drop


def test_prune_after_forget_with_an_index_listing_short_of_a_file_keeps_the_kept_snapshot_restorable(
    request: pytest.FixtureRequest, cutting_proxy: Callable[[str], CuttingProxy], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A listing that silently leaves an index file out makes its packs look unused; the cross-check refuses."""
    monkeypatch.setenv("STASHPLAN_PASSWORD", PASSWORD)
    setup = _rest_setup(request, cutting_proxy, monkeypatch)
    made = _backups(setup.url)
    kept = list(made)[-1]
    forgot = runner.invoke(app, ["forget", "--keep-last", "1", "-r", setup.url])
    assert forgot.exit_code == 0, forgot.output
    before = setup.objects()
    assert sum(1 for name, _ in before if name.startswith("index/")) >= 2
    for position in (0, 1):
        setup.proxy.arm(rest_listing("index"), _drop_entry(position))
        pruned = runner.invoke(app, ["prune", "-r", setup.url])
        setup.proxy.disarm()
        if pruned.exit_code != 0:
            errors = [line for line in pruned.stderr.strip().splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and "nothing deleted" in errors[0], pruned.stderr
            assert setup.objects() == before
        _assert_every_snapshot_restores(setup.url, {kept: made[kept]}, tmp_path)
        before = setup.objects()
