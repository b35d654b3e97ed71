"""Task and Function (stash.appscode.com/v1beta1, cluster-scoped): the steps and containers of a Job."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stashplan.api.models.common import DnsName, FreeForm, ObjectMeta, Param, StashModel
from stashplan.api.models.runtime import ContainerRuntimeSettings


class TaskStep(StashModel):
    """One step: the Function to run (by name) and the params substituted into it."""

    name: DnsName
    params: list[Param] | None = None


class TaskSpec(StashModel):
    steps: list[TaskStep] = Field(min_length=1)
    volumes: list[FreeForm] | None = None


class Task(StashModel):
    """An ordered list of Function steps; all but the last run as init containers."""

    api_version: Literal["stash.appscode.com/v1beta1"]
    kind: Literal["Task"]
    metadata: ObjectMeta
    spec: TaskSpec


class FunctionSpec(StashModel):
    """A container template; strings may hold `${VAR}` / `${VAR:=default}` placeholders."""

    image: str = Field(min_length=1)
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[FreeForm] | None = None
    volume_mounts: list[FreeForm] | None = None
    volume_devices: list[FreeForm] | None = None
    runtime_settings: ContainerRuntimeSettings | None = None
    pod_security_policy_name: str | None = None


class Function(StashModel):
    api_version: Literal["stash.appscode.com/v1beta1"]
    kind: Literal["Function"]
    metadata: ObjectMeta
    spec: FunctionSpec
