"""Why a backup failed, as the `reason` its last-failure metric carries."""

from __future__ import annotations

from providers.storage.base import StorageError
from stashplan.errors import RepositoryError, TransferError
from stashplan.metrics import FailureReason
from stashplan.transfer.failure import of_backup, of_exception
from stashplan.transfer.hooks import HookError


def test_the_exception_that_ended_the_transfer_names_the_stage() -> None:
    assert of_exception(HookError("preBackup hook failed: exit 1")) is FailureReason.HOOK_FAILED
    assert of_exception(TransferError("deadline exceeded: pg_dump was killed")) is FailureReason.DEADLINE_EXCEEDED
    assert of_exception(TransferError("postgres at db:5432 not ready within 300s: refused")) is (
        FailureReason.TARGET_NOT_READY)
    assert of_exception(TransferError("pg_dump exited with 1: permission denied")) is FailureReason.DUMP_FAILED
    assert of_exception(RepositoryError("wrong password")) is FailureReason.REPOSITORY_WRITE_FAILED
    assert of_exception(StorageError("access denied")) is FailureReason.REPOSITORY_WRITE_FAILED
    assert of_exception(KeyError("x")) is FailureReason.UNKNOWN


def test_without_an_exception_the_post_hook_then_the_post_backup_action() -> None:
    retention = {"type": "RetentionPolicyApplied", "status": "False"}
    check = {"type": "RepositoryIntegrityVerified", "status": "False"}
    assert of_backup(None, True, [retention]) is FailureReason.HOOK_FAILED
    assert of_backup(None, False, [check, retention]) is FailureReason.INTEGRITY_CHECK_FAILED
    assert of_backup(TransferError("dump failed"), True, [retention]) is FailureReason.DUMP_FAILED
