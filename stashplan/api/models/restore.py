"""RestoreSession (stash.appscode.com/v1beta1): restore one target from a Repository, once."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

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
