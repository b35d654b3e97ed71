"""The snapshot repository engine: chunked, deduplicated, compressed, encrypted streams in a Storage.

See docs/repository-format.md for the format. Layer: uses providers.storage; knows nothing of sessions.
"""

from stashplan.repository.check import CheckResult
from stashplan.repository.layout import FORMAT_VERSION, Params
from stashplan.repository.locks import LockedError
from stashplan.repository.prune import PruneResult
from stashplan.repository.repo import Repository, RepoStats
from stashplan.repository.retention import ForgetResult, RetentionPolicy, apply_policy
from stashplan.repository.snapshots import InvokerRef, Snapshot, TargetRef

__all__ = [
    "FORMAT_VERSION",
    "CheckResult",
    "ForgetResult",
    "InvokerRef",
    "LockedError",
    "Params",
    "PruneResult",
    "RepoStats",
    "Repository",
    "RetentionPolicy",
    "Snapshot",
    "TargetRef",
    "apply_policy",
]
