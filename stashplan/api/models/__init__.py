"""Typed pydantic models of the Stash kinds stashplan validates, keyed by kind."""

from __future__ import annotations

from pydantic import BaseModel

from stashplan.api.models.appbinding import AppBinding
from stashplan.api.models.backup import BackupConfiguration, BackupSession
from stashplan.api.models.blueprint import BackupBlueprint
from stashplan.api.models.common import StashModel, parse_duration
from stashplan.api.models.repository import Repository, repository_provider
from stashplan.api.models.restore import RestoreSession
from stashplan.api.models.task import Function, Task

MODELS: dict[str, type[BaseModel]] = {
    "Repository": Repository,
    "BackupConfiguration": BackupConfiguration,
    "BackupSession": BackupSession,
    "RestoreSession": RestoreSession,
    "Task": Task,
    "Function": Function,
    "AppBinding": AppBinding,
    "BackupBlueprint": BackupBlueprint,
}

__all__ = [
    "MODELS",
    "AppBinding",
    "BackupBlueprint",
    "BackupConfiguration",
    "BackupSession",
    "Function",
    "Repository",
    "RestoreSession",
    "StashModel",
    "Task",
    "parse_duration",
    "repository_provider",
]
