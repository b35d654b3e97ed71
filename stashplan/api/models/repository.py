"""Repository (stash.appscode.com/v1alpha1): where snapshots are stored (exactly one backend) and its status."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from stashplan.api.models.common import (
    Condition,
    DnsName,
    FreeForm,
    ObjectMeta,
    OpenModel,
    StashModel,
)

BACKEND_PROVIDERS = ("local", "s3", "gcs", "azure", "swift", "b2", "rest")


class LocalSpec(StashModel):
    """A local backend: one inline core VolumeSource (hostPath, nfs, persistentVolumeClaim...) + mountPath."""

    mount_path: str = Field(min_length=1)
    sub_path: str | None = None
    # The inline VolumeSource keys of core/v1 (free-form: validated by Kubernetes, not by stashplan).
    host_path: FreeForm | None = None
    empty_dir: FreeForm | None = None
    nfs: FreeForm | None = None
    persistent_volume_claim: FreeForm | None = None
    gce_persistent_disk: FreeForm | None = None
    aws_elastic_block_store: FreeForm | None = None
    glusterfs: FreeForm | None = None
    iscsi: FreeForm | None = None
    rbd: FreeForm | None = None
    cephfs: FreeForm | None = None
    azure_file: FreeForm | None = None
    azure_disk: FreeForm | None = None
    csi: FreeForm | None = None
    ephemeral: FreeForm | None = None
    secret: FreeForm | None = None
    config_map: FreeForm | None = None
    projected: FreeForm | None = None
    flex_volume: FreeForm | None = None
    cinder: FreeForm | None = None

    @field_validator("sub_path")
    @classmethod
    def _inside_the_mount(cls, value: str | None) -> str | None:
        """As Kubernetes' volumeMount subPath: relative, no `..` component, so it stays inside mountPath."""
        if value is not None and value.startswith("/"):
            raise ValueError(f"{value!r} is absolute: subPath is a directory inside mountPath")
        if value is not None and ".." in value.replace("\\", "/").split("/"):
            raise ValueError(f"{value!r} has a '..' component: subPath must stay inside mountPath")
        return value

    @model_validator(mode="after")
    def _a_volume_that_outlives_the_job(self) -> LocalSpec:
        if self.empty_dir is not None:
            raise ValueError("emptyDir is refused: it lives and dies with the backup Job's pod, so no snapshot "
                             "would outlive it (use hostPath, persistentVolumeClaim or nfs)")
        for field, name in ((self.secret, "secret"), (self.config_map, "configMap"), (self.projected, "projected")):
            if field is not None:
                raise ValueError(f"{name} is refused: a read-only volume cannot hold a repository")
        return self


class S3Spec(StashModel):
    endpoint: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    prefix: str | None = None
    region: str | None = None
    insecure_tls: bool | None = Field(default=None, alias="insecureTLS")


class GCSSpec(StashModel):
    bucket: str = Field(min_length=1)
    prefix: str | None = None
    max_connections: int | None = None


class AzureSpec(StashModel):
    container: str = Field(min_length=1)
    prefix: str | None = None
    max_connections: int | None = None


class SwiftSpec(StashModel):
    container: str = Field(min_length=1)
    prefix: str | None = None


class B2Spec(StashModel):
    bucket: str = Field(min_length=1)
    prefix: str | None = None
    max_connections: int | None = None


class RestSpec(StashModel):
    url: str = Field(min_length=1)


class Backend(StashModel):
    """kmodules objectstore Backend: set exactly one provider, plus the storage Secret's name."""

    storage_secret_name: DnsName | None = None
    local: LocalSpec | None = None
    s3: S3Spec | None = None
    gcs: GCSSpec | None = None
    azure: AzureSpec | None = None
    swift: SwiftSpec | None = None
    b2: B2Spec | None = None
    rest: RestSpec | None = None

    @model_validator(mode="after")
    def _exactly_one_provider(self) -> Backend:
        chosen = [p for p in BACKEND_PROVIDERS if getattr(self, p) is not None]
        if len(chosen) != 1:
            found = ", ".join(chosen) if chosen else "none"
            raise ValueError(f"set exactly one backend of {', '.join(BACKEND_PROVIDERS)} (found: {found})")
        return self


class FromNamespaces(StrEnum):
    SAME = "Same"
    ALL = "All"
    SELECTOR = "Selector"


class AllowedNamespaces(StashModel):
    from_: FromNamespaces = Field(default=FromNamespaces.SAME, alias="from")
    selector: FreeForm | None = None

    @model_validator(mode="after")
    def _selector_with_from_selector(self) -> AllowedNamespaces:
        if self.from_ == FromNamespaces.SELECTOR and not self.selector:
            raise ValueError("from: Selector needs a selector (matchLabels or matchExpressions)")
        return self


class UsagePolicy(StashModel):
    """Which namespaces may use the Repository through `spec.repository.namespace` (default: Same)."""

    allowed_namespaces: AllowedNamespaces = Field(default_factory=AllowedNamespaces)


class RepositorySpec(StashModel):
    backend: Backend
    wipe_out: bool | None = None
    usage_policy: UsagePolicy = Field(default_factory=UsagePolicy)


class PitrStatus(OpenModel):
    """stashplan's, after a PostgreSQL base backup: what a point-in-time restore can reach (see the README)."""

    first_recoverable_time: str | None = None
    last_recoverable_time: str | None = None
    timeline: int | None = None
    window_seconds: int | None = None
    gaps: int | None = None
    first_gap: str | None = None
    verified_time: str | None = None


class RepositoryStatus(OpenModel):
    observed_generation: int | None = None
    first_backup_time: str | None = None
    last_backup_time: str | None = None
    integrity: bool | None = None
    total_size: str | None = None
    snapshot_count: int | None = None
    snapshots_removed_on_last_cleanup: int | None = None
    references: list[FreeForm] | None = None
    pitr: PitrStatus | None = None
    conditions: list[Condition] | None = None  # stashplan's: WALContinuous after a base backup


class Repository(StashModel):
    """A Stash Repository: the backend holding one target's snapshots."""

    api_version: Literal["stash.appscode.com/v1alpha1"]
    kind: Literal["Repository"]
    metadata: ObjectMeta
    spec: RepositorySpec
    status: RepositoryStatus | None = None


def repository_provider(spec: dict[str, Any]) -> str:
    """The provider string Stash uses (REPOSITORY_PROVIDER, metrics label) for a Repository spec dict."""
    backend = spec.get("backend") or {}
    return next((p for p in BACKEND_PROVIDERS if p in backend), "")
