"""The content of `specs/` that ships with the package (addons, CRDs, deploy manifests, examples, monitoring),
read through importlib.resources as `stashplan/_specs/<part>`. A shared leaf.

`stashplan/_specs` is a symlink to `../specs` in a checkout (so a checkout, PYTHONPATH and an editable install
read `specs/` itself) and a copy in a wheel (setuptools package-data follows the symlink when it builds one).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from stashplan.errors import StashplanError

PARTS = ("addons", "crds", "deploy", "examples", "monitoring")


def specs_dir(part: str) -> Path:
    """The folder of shipped `part` (one of PARTS); a StashplanError naming it when the installation lacks it."""
    if part not in PARTS:
        raise ValueError(f"unknown specs part {part!r} (one of {', '.join(PARTS)})")
    where = resources.files("stashplan").joinpath("_specs", part)
    if not isinstance(where, Path):  # a zip import: nothing installs stashplan that way
        raise StashplanError(f"specs/{part}: stashplan is not installed as files ({where}); reinstall it with pip")
    if not where.is_dir():
        raise StashplanError(f"specs/{part} is missing from this installation ({where} is not a directory); "
                             "reinstall stashplan")
    return where
