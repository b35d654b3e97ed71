"""RestoreSession (stash.appscode.com/v1beta1): restore one target from a Repository, once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from stashplan.api.models.backup import DEFAULT_HOST
from stashplan.api.models.common import (
    Condition,
    Driver,
    Duration,
    FreeForm,
    HostPhase,
    ObjectMeta,
    OpenModel,
    RepositoryRef,
    StashModel,
    SupportedDriver,
    TargetRef,
    TaskRef,
    TempDir,
)
from stashplan.api.models.hooks import RestoreHooks
from stashplan.api.models.runtime import InterimVolumeTemplate, RuntimeSettings


class RestoreRule(StashModel):
    """Which snapshots (or paths) to restore on which hosts; `sourceHost` defaults to the restoring host."""

    target_hosts: list[str] | None = None
    source_host: str | None = None
    snapshots: list[str] | None = None
    paths: list[str] | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None


class RestoreTarget(StashModel):
    ref: TargetRef
    alias: str = Field(default=DEFAULT_HOST, description="the source and target host (default host-0)")
    volume_mounts: list[FreeForm] | None = None
    replicas: int | None = None
    volume_claim_templates: list[FreeForm] | None = None
    args: list[str] | None = None
    rules: list[RestoreRule] | None = None


class Pitr(StashModel):
    """Point-in-time recovery of a PostgreSQL base backup + WAL (Task postgres-pitr-restore-<v>): KubeStash's
    `spec.dataSource.pitr.targetTime`, here under `spec.pitr`; targetLSN and targetName are stashplan's own.
    At most one target; none replays all the archived WAL."""

    target_time: datetime | None = Field(default=None, description="recover up to this time (RFC 3339)")
    target_lsn: str | None = Field(
        default=None, alias="targetLSN", description="recover up to this WAL location, e.g. 0/3000060 (stashplan)"
    )
    target_name: str | None = Field(
        default=None, description="recover up to this pg_create_restore_point name (stashplan)"
    )
    exclusive: bool | None = Field(default=None, description="KubeStash's; refused (recovery is inclusive)")

    @model_validator(mode="after")
    def _one_target(self) -> Pitr:
        given = [n for n, v in (("targetTime", self.target_time), ("targetLSN", self.target_lsn),
                                ("targetName", self.target_name)) if v]
        if len(given) > 1:
            raise ValueError(f"give one of targetTime, targetLSN, targetName, not {' and '.join(given)}")
        return self


class RestoreSessionSpec(StashModel):
    task: TaskRef = Field(default_factory=TaskRef)
    target: RestoreTarget
    repository: RepositoryRef
    rules: list[RestoreRule] | None = Field(default=None, description="deprecated: use target.rules")
    driver: SupportedDriver = Driver.RESTIC
    runtime_settings: RuntimeSettings | None = None
    temp_dir: TempDir | None = None
    interim_volume_template: InterimVolumeTemplate | None = None
    hooks: RestoreHooks | None = None
    time_out: Duration | None = None
    pitr: Pitr | None = Field(default=None, description="PostgreSQL point-in-time target (postgres-pitr-restore)")


class RestorePhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"
    INVALID = "Invalid"


class HostRestoreStats(OpenModel):
    hostname: str | None = None
    phase: HostPhase | None = None
    duration: str | None = None
    error: str | None = None


class RestoreSessionStatus(OpenModel):
    phase: RestorePhase | None = None
    total_hosts: int | None = None
    session_duration: str | None = None
    session_deadline: str | None = None
    stats: list[HostRestoreStats] | None = None
    conditions: list[Condition] | None = None


class RestoreSession(StashModel):
    """A one-off restore of a target from a Repository."""

    api_version: Literal["stash.appscode.com/v1beta1"]
    kind: Literal["RestoreSession"]
    metadata: ObjectMeta
    spec: RestoreSessionSpec
    status: RestoreSessionStatus | None = None
