"""Task params the database tool would refuse, found at plan time: the transfer arguments of a built pod are
handed to the check the CLI provides (the database providers' allow-lists). Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

# (direction "backup"|"restore", database, {"backupCMD"|"args"|"multiDumpArgs": value}) -> notes for the plan
# (options translated for the client that will run; None or empty when none), or raises a StashplanError /
# ValueError naming the param and the option.
ParamCheck = Callable[[str, str, Mapping[str, str]], Sequence[str] | None]

_FLAGS = {"--backup-cmd=": "backupCMD", "--args=": "args", "--multi-dump-args=": "multiDumpArgs"}


def transfer_params(container: dict) -> tuple[str, str, dict[str, str]] | None:
    """(direction, database, params) of a `stashplan transfer backup|restore` container, else None."""
    argv = [str(a) for a in (*(container.get("command") or []), *(container.get("args") or []))]
    if "transfer" not in argv:
        return None
    i = argv.index("transfer")
    direction = argv[i + 1] if len(argv) > i + 1 else ""
    if direction not in ("backup", "restore"):
        return None
    database, params = "", {}
    for arg in argv[i + 2:]:
        if arg.startswith("--database="):
            database = arg.partition("=")[2]
        for flag, name in _FLAGS.items():
            if arg.startswith(flag):
                params[name] = arg[len(flag):]
    return (direction, database, params) if database else None


def check_pod(pod: Mapping, check: ParamCheck | None) -> list[str]:
    """Run `check` on every transfer container of `pod` (nothing without a check); the notes it returned."""
    if check is None:
        return []
    notes: list[str] = []
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        found = transfer_params(container)
        if found is not None:
            direction, database, params = found
            notes += _passes(check, direction, database, tuple(sorted(params.items())))
    return notes


@lru_cache(maxsize=1024)
def _passes(check: ParamCheck, direction: str, database: str, params: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """`check` of one set of params; the allow-lists are fixed, so a set that passed once is not checked again
    (a refusal raises and is not cached). 50,000 configurations share a few sets."""
    return tuple(check(direction, database, dict(params)) or ())
