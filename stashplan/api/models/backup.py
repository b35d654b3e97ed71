"""BackupConfiguration and BackupSession (stash.appscode.com/v1beta1): what to back up, when, and one run."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from stashplan.api.models.common import (
    Condition,
    CronSchedule,
    DnsName,
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
from stashplan.api.models.hooks import BackupHooks
from stashplan.api.models.runtime import InterimVolumeTemplate, RuntimeSettings
from stashplan.phases import SessionPhase

DEFAULT_HOST = "host-0"


class BackupTarget(StashModel):
    ref: TargetRef
    alias: str = Field(default=DEFAULT_HOST, description="the restic --host of the snapshots (default host-0)")
    paths: list[str] | None = None
    volume_mounts: list[FreeForm] | None = None
    replicas: int | None = None
    snapshot_class_name: str | None = None
    exclude: list[str] | None = None
    args: list[str] | None = None


class RetentionPolicy(StashModel):
    """restic forget flags; `prune` is required (forget without prune frees no space)."""

    name: str = Field(min_length=1)
    keep_last: int | None = Field(default=None, ge=0)
    keep_hourly: int | None = Field(default=None, ge=0)
    keep_daily: int | None = Field(default=None, ge=0)
    keep_weekly: int | None = Field(default=None, ge=0)
    keep_monthly: int | None = Field(default=None, ge=0)
    keep_yearly: int | None = Field(default=None, ge=0)
    keep_tags: list[str] | None = None
    prune: bool
    dry_run: bool | None = None


class RetryConfig(StashModel):
    max_retry: int = Field(default=1, ge=0)
    delay: Duration | None = None


class BackupConfigurationSpec(StashModel):
    task: TaskRef = Field(default_factory=TaskRef)
    target: BackupTarget
    repository: RepositoryRef
    retention_policy: RetentionPolicy
    schedule: CronSchedule | None = None
    driver: SupportedDriver = Driver.RESTIC
    runtime_settings: RuntimeSettings | None = None
    temp_dir: TempDir | None = None
    interim_volume_template: InterimVolumeTemplate | None = None
    hooks: BackupHooks | None = None
    paused: bool | None = None
    backup_history_limit: int = Field(default=1, ge=0)
    time_out: Duration | None = None
    retry_config: RetryConfig | None = None


class ConfigPhase(StrEnum):
    INVALID = "Invalid"
    READY = "Ready"
    NOT_READY = "NotReady"


class BackupConfigurationStatus(OpenModel):
    observed_generation: int | None = None
    phase: ConfigPhase | None = None
    conditions: list[Condition] | None = None


class BackupConfiguration(StashModel):
    """A scheduled backup of one target into one Repository."""

    api_version: Literal["stash.appscode.com/v1beta1"]
    kind: Literal["BackupConfiguration"]
    metadata: ObjectMeta
    spec: BackupConfigurationSpec
    status: BackupConfigurationStatus | None = None


# --- BackupSession ------------------------------------------------------------------------------------


class InvokerKind(StrEnum):
    BACKUP_CONFIGURATION = "BackupConfiguration"
    BACKUP_BATCH = "BackupBatch"


class Invoker(StashModel):
    api_group: str = "stash.appscode.com"
    kind: InvokerKind
    name: DnsName


class BackupSessionSpec(StashModel):
    invoker: Invoker
    retry_left: int | None = None


class TargetPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class SnapshotStats(OpenModel):
    name: str | None = None
    path: str | None = None
    total_size: str | None = None
    uploaded: str | None = None
    processing_time: str | None = None
    file_stats: FreeForm | None = None


class HostBackupStats(OpenModel):
    hostname: str | None = None
    phase: HostPhase | None = None
    duration: str | None = None
    error: str | None = None
    snapshots: list[SnapshotStats] | None = None


class BackupTargetStatus(OpenModel):
    ref: FreeForm | None = None
    total_hosts: int | None = None
    phase: TargetPhase | None = None
    pre_backup_actions: list[str] | None = None
    post_backup_actions: list[str] | None = None
    conditions: list[Condition] | None = None
    stats: list[HostBackupStats] | None = None


class BackupSessionStatus(OpenModel):
    phase: SessionPhase | None = None
    session_duration: str | None = None
    session_deadline: str | None = None
    retried: bool | None = None
    next_retry: str | None = None
    conditions: list[Condition] | None = None
    targets: list[BackupTargetStatus] | None = None


class BackupSession(StashModel):
    """One run of a BackupConfiguration (named `<invoker>-<unix-ts>`); spec is immutable."""

    api_version: Literal["stash.appscode.com/v1beta1"]
    kind: Literal["BackupSession"]
    metadata: ObjectMeta
    spec: BackupSessionSpec
    status: BackupSessionStatus | None = None
