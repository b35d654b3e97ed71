"""BackupBlueprint (stash.appscode.com/v1beta1, cluster-scoped): the Repository and BackupConfiguration Stash
generates for every AppBinding annotated `stash.appscode.com/backup-blueprint: <name>` (auto-backup)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stashplan.api.models.backup import RetentionPolicy, RetryConfig
from stashplan.api.models.common import (
    DnsLabel,
    Duration,
    FreeForm,
    ObjectMeta,
    Param,
    StashModel,
    TempDir,
)
from stashplan.api.models.hooks import BackupHooks
from stashplan.api.models.repository import Backend, UsagePolicy


class BlueprintTask(StashModel):
    """`spec.task`: the name may hold variables, e.g. `${TARGET_APP_RESOURCE}-backup-${TARGET_APP_VERSION}`."""

    name: str | None = None
    params: list[Param] | None = None


class BackupBlueprintSpec(StashModel):
    backend: Backend
    wipe_out: bool | None = None
    usage_policy: UsagePolicy | None = None
    backup_namespace: DnsLabel | None = None
    repo_namespace: DnsLabel | None = None
    schedule: str = Field(min_length=1)
    task: BlueprintTask | None = None
    retention_policy: RetentionPolicy
    runtime_settings: FreeForm | None = None
    temp_dir: TempDir | None = None
    interim_volume_template: FreeForm | None = None
    hooks: BackupHooks | None = None
    backup_history_limit: int | None = Field(default=None, ge=0)
    time_out: Duration | None = None
    retry_config: RetryConfig | None = None


class BackupBlueprint(StashModel):
    """A template for the Repository and BackupConfiguration of every annotated AppBinding."""

    api_version: Literal["stash.appscode.com/v1beta1"]
    kind: Literal["BackupBlueprint"]
    metadata: ObjectMeta
    spec: BackupBlueprintSpec
