"""wal-receive's directory must hold this server's WAL only: against the shared PostgreSQL, a directory left by
another server (its segments' first pages name another system identifier) is refused in one line when the user
gave it, emptied when it is the receiver's own; this server's segments pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.storage import open_storage
from stashplan.errors import StashplanError
from stashplan.pitr.receive import Options, Receiver, Source
from stashplan.pitr.slotlag import system_identifier
from stashplan.repository import Repository
from stashplan.repository.layout import Params
from tests.fixtures.databases import PG_HOST, PG_PORT

SOURCE = Source(PG_HOST, PG_PORT, "postgres")


def _segment(path: Path, sysid: int) -> None:
    """The first page of a WAL segment as PostgreSQL writes it: magic, info with the long-header bit, timeline,
    page address, remaining length, then the system identifier and the segment and block sizes."""
    header = (0xD110).to_bytes(2, "little") + (0x0002).to_bytes(2, "little") + (1).to_bytes(4, "little")
    header += bytes(8) + bytes(4) + bytes(4) + sysid.to_bytes(8, "little") + (16 << 20).to_bytes(4, "little")
    path.write_bytes(header + bytes(8192 - len(header)))


def _receiver(tmp_path: Path, directory: Path, *, own: bool) -> Receiver:
    repo = Repository.init(open_storage(f"local:{tmp_path / 'repo'}"), "pw", Params())
    return Receiver(repo, SOURCE, Options("stashplan_dir_test", directory, clear_foreign=own))


def test_another_servers_wal_is_refused_in_a_given_directory_and_removed_from_the_receivers_own(
    tmp_path: Path,
) -> None:
    mine = system_identifier("psql", SOURCE)
    given = tmp_path / "given"
    given.mkdir()
    _segment(given / "000000010000000000000003", mine)
    _segment(given / "000000010000000000000004.partial", mine + 1)
    with pytest.raises(StashplanError) as refused:
        _receiver(tmp_path, given, own=False)._check_directory()
    message = str(refused.value)
    assert f"system identifier {mine + 1}, not {mine}" in message and "000000010000000000000004.partial" in message
    assert len(list(given.iterdir())) == 2  # nothing removed from the user's directory

    own = tmp_path / "own"
    own.mkdir()
    _segment(own / "000000010000000000000009", mine + 1)
    (own / "00000002.history").write_text("1\t0/9000000\tno recovery target specified\n")
    _receiver(tmp_path / "b", own, own=True)._check_directory()
    assert list(own.iterdir()) == []

    same = tmp_path / "same"
    same.mkdir()
    _segment(same / "000000010000000000000005.partial", mine)
    _receiver(tmp_path / "c", same, own=False)._check_directory()  # this server's: resumed from
    assert [p.name for p in same.iterdir()] == ["000000010000000000000005.partial"]
