"""Shared pieces of the Stash API models: the strict camelCase base model, metadata, references, conditions
and the value checks (DNS-1123 names, cron schedules, Go durations). Pure; used only inside stashplan.api."""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from stashplan.units import parse_go_duration

FreeForm = dict[str, Any]
"""A free-form object (runtimeSettings, volumes, hooks...): kept as is, never checked field by field."""


class StashModel(BaseModel):
    """Strict base of every spec model: camelCase field names only, unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        extra="forbid",
        coerce_numbers_to_str=True,
        use_enum_values=True,
    )


class OpenModel(StashModel):
    """Base of status models and Kubernetes passthrough parts: known fields typed, extra fields kept."""

    model_config = ConfigDict(extra="allow")


# --- value checks -------------------------------------------------------------------------------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def check_dns_subdomain(value: str) -> str:
    """A Kubernetes object name: DNS-1123 subdomain (lowercase alphanumerics, '-', '.'; at most 253)."""
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (DNS-1123 subdomain, at most 253 characters)"
        )
    return value


def check_dns_label(value: str) -> str:
    """A namespace name: DNS-1123 label (lowercase alphanumerics and '-', at most 63)."""
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid namespace: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (DNS-1123 label, at most 63 characters)"
        )
    return value


@functools.lru_cache(maxsize=4096)
def _valid_cron(text: str) -> bool:
    """Five valid cron fields (cached: fleets share a handful of schedules, and croniter is slow)."""
    return len(text.split()) == 5 and bool(croniter.is_valid(text))


def check_cron(value: str) -> str:
    """A Kubernetes CronJob schedule: five cron fields or one of the @macros (@daily, @hourly...)."""
    text = value.strip()
    if text in CRON_MACROS:
        return value
    if not _valid_cron(text):
        raise ValueError(
            f"{value!r} is not a valid cron schedule: expected 5 fields 'minute hour day-of-month month "
            "day-of-week' (e.g. '*/30 * * * *') or one of " + ", ".join(sorted(CRON_MACROS))
        )
    return value


def parse_duration(value: str) -> timedelta:
    """A Go/Kubernetes duration such as "30m", "1h30m", "90s" or "1.5h" as a timedelta."""
    return parse_go_duration(value)


def check_duration(value: str) -> str:
    parse_duration(value)
    return value


DnsName = Annotated[str, AfterValidator(check_dns_subdomain)]
DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
CronSchedule = Annotated[str, AfterValidator(check_cron)]
Duration = Annotated[str, AfterValidator(check_duration)]


# --- shared structures --------------------------------------------------------------------------------


class ObjectMeta(OpenModel):
    """Kubernetes metadata: name and namespace checked, everything else (uid, ownerReferences...) kept."""

    name: DnsName
    namespace: DnsLabel | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Param(StashModel):
    """A Task parameter: `{name, value}`; values are strings (numbers are converted)."""

    name: str = Field(min_length=1)
    value: str = ""


class TaskRef(StashModel):
    """`spec.task` of a BackupConfiguration or RestoreSession; the name may be omitted for KubeDB targets."""

    name: DnsName | None = None
    params: list[Param] | None = None


class TargetRef(StashModel):
    """`spec.target.ref`: the database to back up or restore; other kinds are refused (stashplan.api.fields)."""

    api_version: str = "appcatalog.appscode.com/v1alpha1"
    kind: str = "AppBinding"
    name: DnsName
    namespace: DnsLabel | None = None


class RepositoryRef(StashModel):
    """`spec.repository`: a Repository by name, optionally in another namespace (see usagePolicy)."""

    name: DnsName
    namespace: DnsLabel | None = None


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(OpenModel):
    """A kmodules condition: type, status, reason, message, lastTransitionTime, observedGeneration."""

    type: str
    status: ConditionStatus
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class TempDir(StashModel):
    medium: str | None = None
    size_limit: str | None = None
    disable_caching: bool | None = None


class Driver(StrEnum):
    RESTIC = "Restic"
    VOLUME_SNAPSHOTTER = "VolumeSnapshotter"


SupportedDriver = Driver  # VolumeSnapshotter is refused at plan time (stashplan.api.fields)


class HostPhase(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    RUNNING = "Running"
    UNKNOWN = "Unknown"
