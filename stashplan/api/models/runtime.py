"""runtimeSettings (kmodules offshoot RuntimeSettings) of a BackupConfiguration or RestoreSession: the
pod- and container-level fields stashplan puts on the Job pod, each named so that a typo is an error;
Kubernetes-typed values (affinity, resources...) are kept as given for the API server to check. Pure."""

from __future__ import annotations

from pydantic import Field

from stashplan.api.models.common import FreeForm, StashModel


class NiceSettings(StashModel):
    """`nice -n adjustment` on the dump/restore and upload: -20 (first) to 19 (last)."""

    adjustment: int | None = Field(default=None, ge=-20, le=19)


class IONiceSettings(StashModel):
    """`ionice -c class -n classData`: class 1 realtime, 2 best-effort, 3 idle; classData 0 (first) to 7."""

    class_: int | None = Field(default=None, alias="class", ge=1, le=3)
    class_data: int | None = Field(default=None, ge=0, le=7)


class ContainerRuntimeSettings(StashModel):
    resources: FreeForm | None = None
    liveness_probe: FreeForm | None = None
    readiness_probe: FreeForm | None = None
    lifecycle: FreeForm | None = None
    security_context: FreeForm | None = None
    nice: NiceSettings | None = None
    ionice: IONiceSettings | None = None
    env_from: list[FreeForm] | None = None
    env: list[FreeForm] | None = None


class PodRuntimeSettings(StashModel):
    pod_labels: dict[str, str] | None = None
    pod_annotations: dict[str, str] | None = None
    node_selector: dict[str, str] | None = None
    service_account_name: str | None = None
    service_account_annotations: dict[str, str] | None = None
    automount_service_account_token: bool | None = None
    node_name: str | None = None
    security_context: FreeForm | None = None
    image_pull_secrets: list[FreeForm] | None = None
    affinity: FreeForm | None = None
    scheduler_name: str | None = None
    tolerations: list[FreeForm] | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    readiness_gates: list[FreeForm] | None = None
    runtime_class_name: str | None = None
    enable_service_links: bool | None = None
    topology_spread_constraints: list[FreeForm] | None = None


class RuntimeSettings(StashModel):
    pod: PodRuntimeSettings | None = None
    container: ContainerRuntimeSettings | None = None


class InterimVolumeTemplate(StashModel):
    """A PersistentVolumeClaim template (labels/annotations and spec) for the Job's interim volume."""

    metadata: FreeForm | None = None
    spec: FreeForm
