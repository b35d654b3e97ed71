"""The built-in addons: Task + Function manifests in specs/addons/ (found relative to this package)."""

from __future__ import annotations

from pathlib import Path

from stashplan.api.loading import load_paths
from stashplan.errors import StashplanError

ADDONS_DIR = Path(__file__).resolve().parents[2] / "specs" / "addons"


def builtin_addons(directory: Path | None = None) -> list[dict]:
    """The validated Task and Function dicts of the built-in addons (postgres, mysql, mariadb, redis, sqlite)."""
    where = directory or ADDONS_DIR
    if not where.is_dir():
        raise StashplanError(f"built-in addons not found: {where} is not a directory (install from a checkout)")
    return load_paths([where])
