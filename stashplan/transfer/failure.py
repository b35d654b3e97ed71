"""Why a backup failed, as one FailureReason for its metrics (`reason` of the last-failure gauge): from the
exception that ended the transfer, else from a failed post hook, retention or integrity check. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from providers.storage.base import StorageError
from stashplan.errors import RepositoryError, TransferError, TransientError
from stashplan.metrics import FailureReason
from stashplan.transfer.hooks import HookError

_POST_ACTIONS = {
    "RetentionPolicyApplied": FailureReason.RETENTION_FAILED,
    "RepositoryIntegrityVerified": FailureReason.INTEGRITY_CHECK_FAILED,
}


def of_exception(exc: BaseException) -> FailureReason:
    """The reason for the exception that ended a transfer (its messages are those of pipe.py and wait_ready)."""
    text = str(exc)
    if isinstance(exc, HookError):
        return FailureReason.HOOK_FAILED
    if text.startswith("deadline exceeded"):
        return FailureReason.DEADLINE_EXCEEDED
    if isinstance(exc, (RepositoryError, StorageError, TransientError)):
        return FailureReason.REPOSITORY_WRITE_FAILED
    if isinstance(exc, TransferError):
        if " not ready within " in text or " is not usable: " in text or " readiness check: " in text:
            return FailureReason.TARGET_NOT_READY
        return FailureReason.DUMP_FAILED
    return FailureReason.UNKNOWN


def of_backup(exc: BaseException | None, post_hook_failed: bool, failed_conditions: Sequence[dict]) -> FailureReason:
    """The reason a backup session failed: the transfer's exception first, then the post hook, then the first
    failed post-backup action (retention, integrity check)."""
    if exc is not None:
        return of_exception(exc)
    if post_hook_failed:
        return FailureReason.HOOK_FAILED
    for cond in failed_conditions:
        if cond.get("type") in _POST_ACTIONS:
            return _POST_ACTIONS[cond["type"]]
    return FailureReason.UNKNOWN
