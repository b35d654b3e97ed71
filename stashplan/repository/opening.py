"""Opening whichever repository a storage holds: stashplan's own format, or a restic one (read-only)."""

from __future__ import annotations

from providers.storage import Storage
from stashplan.repository.formats import detect
from stashplan.repository.repo import Repository
from stashplan.repository.restic.repo import ResticRepository

AnyRepository = Repository | ResticRepository


def open_repository(storage: Storage, password: str) -> AnyRepository:
    """A `ResticRepository` when the storage holds restic's config and key files, else a `Repository`."""
    if detect(storage) is not None:
        return ResticRepository.open(storage, password)
    return Repository.open(storage, password)
