"""Cross-checks a destructive operation (prune) makes on what it listed before it deletes anything.

Backends refuse listings they cannot confirm complete (`IncompleteListing`), but a well-formed answer
that silently leaves names out cannot be seen on backends whose listings carry no count (gcs, azure,
swift, b2, rest). These checks catch what such a listing would make prune delete:
- every blob the listed snapshots use is known to the index read: an `index/` listing short of a file
  makes that file's packs look like leftovers of interrupted backups (`require_indexed`);
- the snapshot and index files the plan was made from are still listed when it executes
  (`require_still_listed`; under the exclusive lock nothing else removes them).
Reads only; a failed check is a one-line RepositoryError and nothing has been deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from providers.storage import Storage
from stashplan.errors import RepositoryError
from stashplan.repository.index import Index


def unindexed(used: Iterable[bytes], index: Index) -> list[bytes]:
    """The blobs of `used` that no index file read knows, in a stable order."""
    return sorted(blob for blob in used if blob not in index)


def require_indexed(used: Iterable[bytes], index: Index, operation: str = "prune") -> None:
    """RepositoryError when a blob the snapshots use is in no index file read.

    Either an `index/` listing left a file out, or `repair packs` dropped damaged data that snapshots
    still reference; in both cases what is used is unknown, so nothing may be deleted."""
    missing = unindexed(used, index)
    if missing:
        raise RepositoryError(
            f"{operation}: {len(missing)} blobs the snapshots use (first {missing[0].hex()[:16]}) are in no "
            f"index file read ({len(index.files)} files): the index/ listing may be incomplete; nothing "
            "deleted (`stashplan repo check`; after `repo repair packs`, run `repo repair snapshots`)"
        )


def require_still_listed(
    storage: Storage, prefix: str, planned: Collection[str], operation: str = "prune"
) -> None:
    """RepositoryError when a name listed under `prefix` when planning is not listed now."""
    now = {info.name for info in storage.list(prefix)}
    gone = sorted(set(planned) - now)
    if gone:
        raise RepositoryError(
            f"{operation}: {len(gone)} of the {len(planned)} files listed under {prefix} when planning "
            f"(first {gone[0]}) are not listed now: a listing may be incomplete; nothing deleted"
        )
