"""The Stash API as stashplan sees it: load + validate manifests, built-in addons, CRDs. Pure but for reads."""

from __future__ import annotations

from stashplan.api.addons import builtin_addons
from stashplan.api.crds import crd_manifests, render_crds_yaml, write_crds
from stashplan.api.loading import load_paths, validate_objects
from stashplan.api.models import MODELS, parse_duration, repository_provider

__all__ = [
    "MODELS",
    "builtin_addons",
    "crd_manifests",
    "load_paths",
    "parse_duration",
    "render_crds_yaml",
    "repository_provider",
    "validate_objects",
    "write_crds",
]
