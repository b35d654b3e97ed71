"""Where `stashplan repo` finds its repository and password: `--repo` + STASHPLAN_PASSWORD/--password-file,
or `-f` manifests holding a Repository and its storage Secret (RESTIC_PASSWORD, AWS_* keys).
"""

from __future__ import annotations

import os
from pathlib import Path

from providers.storage import Storage, open_storage, storage_from_repository
from stashplan.errors import StashplanError


def from_manifests(paths: list[Path], name: str | None) -> tuple[Storage, str]:
    """The storage and password of the (only, or `name`d) Repository in the manifests and its Secret."""
    from stashplan.api import load_paths
    from stashplan.secrets import secret_data

    objs = load_paths(paths)
    repos = [
        o for o in objs if o.get("kind") == "Repository" and (name is None or o["metadata"]["name"] == name)
    ]
    if len(repos) != 1:
        which = f" named {name}" if name else ""
        raise StashplanError(
            f"-f: expected exactly one Repository{which}, found {len(repos)} (use --repository-name)"
        )
    repo = repos[0]
    meta = repo["metadata"]
    secret_name = ((repo.get("spec") or {}).get("backend") or {}).get("storageSecretName", "")
    secrets = [
        o
        for o in objs
        if o.get("kind") == "Secret"
        and o["metadata"].get("name") == secret_name
        and o["metadata"].get("namespace", "default") == meta.get("namespace", "default")
    ]
    if not secrets:
        raise StashplanError(
            f"-f: Repository {meta['name']}: storage Secret {secret_name!r} not found in the manifests"
        )
    data = secret_data(secrets[0])
    if not data.get("RESTIC_PASSWORD"):
        raise StashplanError(f"-f: Secret {secret_name}: RESTIC_PASSWORD is missing")
    return storage_from_repository(repo, data), data["RESTIC_PASSWORD"]


def locate(
    repo: str | None, password_file: Path | None, manifests: list[Path] | None, name: str | None
) -> tuple[Storage, str]:
    """Storage and password from -f manifests (a password file or STASHPLAN_PASSWORD overrides the
    Secret's) or from --repo with the password file or STASHPLAN_PASSWORD."""
    if manifests:
        storage, password = from_manifests(manifests, name)
        if password_file is not None or os.environ.get("STASHPLAN_PASSWORD"):
            password = password_from(password_file)
        return storage, password
    if not repo:
        raise StashplanError(
            "no repository given: use --repo local:/path|s3:https://host/bucket/prefix or -f manifests"
        )
    return open_storage(repo), password_from(password_file)


def password_from(password_file: Path | None) -> str:
    """The first line of `password_file`, else STASHPLAN_PASSWORD; an error naming both if neither."""
    if password_file is not None:
        try:
            lines = password_file.read_text().splitlines()
        except OSError as exc:
            raise StashplanError(f"cannot read password file {password_file}: {exc.strerror}") from None
        return lines[0] if lines else ""
    password = os.environ.get("STASHPLAN_PASSWORD", "")
    if not password:
        raise StashplanError("no password: set STASHPLAN_PASSWORD or use --password-file")
    return password
