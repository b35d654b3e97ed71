"""Dump sequencer process: runs several dump commands one after another into one stdout, without a shell.

Run as `python -m providers.databases.sequence '<JSON list of argv lists>'` (secrets only in the
environment, which every command inherits). Like Stash's `bash -c "dump1 && dump2"`: the commands share
this process's stdout and stderr, the next starts only when the previous exited 0, and the first failure
ends the sequence with that command's exit code (128 + N for a signal), so the reader of the stream sees
a failed dump and records no snapshot. Every command stays in this process group, so killing the group
(deadline, early close) stops them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence


def parse(text: str) -> list[list[str]]:
    """The argv lists from the JSON argument; ValueError unless it is a non-empty list of non-empty
    lists of strings."""
    value = json.loads(text)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(a, list) and a and all(isinstance(w, str) for w in a) for a in value)
    ):
        raise ValueError("expected a non-empty JSON list of non-empty argv lists")
    return value


def run(commands: Sequence[Sequence[str]]) -> int:
    """Run `commands` in order, stopping at the first failure; the exit code to return."""
    for i, argv in enumerate(commands, 1):
        try:
            rc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, check=False).returncode
        except OSError as exc:
            print(f"dump {i} of {len(commands)}: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
            return 127
        if rc != 0:
            how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
            print(f"dump {i} of {len(commands)} ({argv[0]}) {how}", file=sys.stderr)
            return 128 - rc if rc < 0 else rc
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m providers.databases.sequence '<JSON list of argv lists>'", file=sys.stderr)
        return 2
    try:
        commands = parse(args[0])
    except ValueError as exc:
        print(f"sequence: {exc}", file=sys.stderr)
        return 2
    return run(commands)


if __name__ == "__main__":
    sys.exit(main())
