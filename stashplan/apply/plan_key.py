"""The key that seals saved plans (`plan --out`, `apply FILE`), kept beside the state and never in a plan file:
`<state folder>/plan.key` in local mode, `$XDG_CONFIG_HOME/stashplan/plan.key` (else ~/.config/…) in kube mode.
Created on first use: 32 random bytes, the file 0600 in a 0700 folder. Also writes plan files 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from stashplan.cluster.factory import ClusterSettings
from stashplan.errors import StashplanError

KEY_BYTES = 32


def key_path(cs: ClusterSettings) -> Path:
    if cs.mode == "local":
        return cs.state.parent / "plan.key"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "stashplan" / "plan.key"


def plan_key(cs: ClusterSettings, *, create: bool) -> bytes:
    """The sealing key; made when missing if `create` (saving a plan), else a one-line error (applying one)."""
    path = key_path(cs)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise StashplanError(f"no plan key at {path}: a saved plan is applied where it was made (with the same "
                                 "state folder or user); run plan again here") from None
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process: use that one
            return plan_key(cs, create=False)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    if len(key) != KEY_BYTES:
        raise StashplanError(f"{path} is not a plan key ({len(key)} bytes, expected {KEY_BYTES})")
    return key


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600, also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
