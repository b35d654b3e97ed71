"""What a transfer writes (session status, conditions, Repository status, Events) masked against every Secret value
its session can see and every URL credential: hook output and error tails quote what they like."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from stashplan.cluster.base import Cluster, WatchEvent
from stashplan.managed_fields import FIELD_MANAGER
from stashplan.secrets import Masker, secret_values
from stashplan.transfer.context import PodInputs, SessionContext


def session_masker(ctx: SessionContext, given: PodInputs | None) -> Masker:
    """A Masker of the Secret values the session sees: its database, TLS and storage Secrets, and every Secret its
    pod spec gave it."""
    values = [*secret_values(ctx.db_secret), *secret_values(ctx.storage_secret)]
    if ctx.client_tls is not None:
        values += [ctx.client_tls.key]
    if given is not None and given.secrets is not None:
        values += [v for data in given.secrets.values() for v in secret_values(data)]
    return Masker(values)


class MaskingCluster:
    """A Cluster whose writes are masked (reads pass through)."""

    def __init__(self, cluster: Cluster, masker: Masker) -> None:
        self.cluster, self.masker = cluster, masker

    def list(self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None) -> list[dict]:
        return self.cluster.list(kind, namespace, labels)

    def get(self, kind: str, namespace: str, name: str) -> dict:
        return self.cluster.get(kind, namespace, name)

    def create(self, obj: dict) -> dict:
        return self.cluster.create(self.masker.deep(obj))

    def replace(self, obj: dict) -> dict:
        return self.cluster.replace(self.masker.deep(obj))

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict:
        return self.cluster.apply(self.masker.deep(obj), field_manager=field_manager)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.cluster.delete(kind, namespace, name)

    def patch_status(self, kind: str, namespace: str, name: str, status: dict, *,
                     resource_version: str | None = None) -> dict:
        return self.cluster.patch_status(kind, namespace, name, self.masker.deep(status),
                                         resource_version=resource_version)

    def watch(self, kinds: Sequence[str], since: str | None = None, timeout: float = 10.0) -> Iterator[WatchEvent]:
        return self.cluster.watch(kinds, since, timeout)

    def close(self) -> None:
        self.cluster.close()


class _LogMask(logging.Filter):
    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.masker(record.getMessage()), ()
        return True


@contextmanager
def masked_logs(masker: Masker) -> Iterator[None]:
    """Every log line (the Job's output, its failure tail) masked while the session runs."""
    mask = _LogMask(masker)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(mask)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(mask)
