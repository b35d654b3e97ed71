"""The built-in addons: Task + Function manifests in specs/addons/ (shipped as package data, stashplan.packaged)."""

from __future__ import annotations

import copy
from pathlib import Path

from stashplan.api.loading import load_paths
from stashplan.errors import StashplanError
from stashplan.packaged import specs_dir

_loaded: dict[tuple, list[dict]] = {}


def builtin_addons(directory: Path | None = None) -> list[dict]:
    """The validated Task and Function dicts of the built-in addons (postgres, mysql, mariadb, redis, sqlite).
    Parsed once per set of file versions; each call gets its own copy."""
    where = directory or specs_dir("addons")
    if not where.is_dir():
        raise StashplanError(f"built-in addons not found: {where} is not a directory")
    key = (str(where), *sorted((p.name, p.stat().st_mtime_ns) for p in where.iterdir()))
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = load_paths([where])
    return copy.deepcopy(_loaded[key])
