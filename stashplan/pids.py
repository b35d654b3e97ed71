"""Whether a process id names a live process (standard library only: the lean restore_command path uses it)."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True when `pid` is a live process (one of another user's counts); False for 0 or less."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
