"""CPU and I/O priority of a transfer (`runtimeSettings.container.nice` / `ionice`), read from the environment
variables Stash uses (NICE_ADJUSTMENT, IONICE_CLASS, IONICE_CLASS_DATA) and applied to the transfer process
itself, so that its uploads and the dump or restore client it starts afterwards all run with it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from stashplan.errors import TransferError

NICE_ENV, IONICE_CLASS_ENV, IONICE_DATA_ENV = "NICE_ADJUSTMENT", "IONICE_CLASS", "IONICE_CLASS_DATA"


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise TransferError(f"{name}={raw!r} is not a whole number") from None


@dataclass(frozen=True)
class Priority:
    """`nice` is added to the niceness (as `nice -n`); `io_class` 1-3 with `io_data` 0-7 as `ionice -c -n`."""

    nice: int | None = None
    io_class: int | None = None
    io_data: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Priority:
        return cls(_int(env, NICE_ENV), _int(env, IONICE_CLASS_ENV), _int(env, IONICE_DATA_ENV))

    @property
    def empty(self) -> bool:
        return self.nice is None and self.io_class is None and self.io_data is None

    def apply(self) -> None:
        """Set this process's (main thread's) priority; children and threads started later inherit it.
        TransferError when the system refuses (raising priority needs CAP_SYS_NICE / CAP_SYS_ADMIN)."""
        if self.nice:
            try:
                os.nice(self.nice)
            except OSError as exc:
                raise TransferError(
                    f"runtimeSettings.container.nice.adjustment {self.nice}: cannot change the niceness: "
                    f"{exc.strerror or exc}"
                ) from None
        if self.io_class is None and self.io_data is None:
            return
        ionice = shutil.which("ionice")
        if ionice is None:
            raise TransferError("runtimeSettings.container.ionice: the ionice program (util-linux) is not installed")
        argv = [ionice, "-c", str(2 if self.io_class is None else self.io_class)]
        if self.io_data is not None and self.io_class != 3:  # the idle class takes no level
            argv += ["-n", str(self.io_data)]
        done = subprocess.run([*argv, "-p", str(os.getpid())], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise TransferError(
                f"runtimeSettings.container.ionice (class {self.io_class}, classData {self.io_data}): "
                f"{(done.stderr or done.stdout).strip() or f'ionice exited with code {done.returncode}'}"
            )
