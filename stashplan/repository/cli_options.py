"""The options every `stashplan repo` command shares and how a command opens its repository: one-line
errors (operating-system errors name the path and the cause), warnings about skipped files on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from stashplan.errors import StashplanError
from stashplan.repository.locating import locate
from stashplan.repository.locks import Terminated
from stashplan.repository.opening import AnyRepository, open_repository
from stashplan.repository.repo import Repository

T = TypeVar("T")

RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo", "-r", envvar="STASHPLAN_REPOSITORY", help="local:/path or s3:https://host/bucket/prefix"
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option("--password-file", help="File whose first line is the password (else STASHPLAN_PASSWORD)"),
]
ManifestOpt = Annotated[
    list[Path] | None,
    typer.Option("-f", "--filename", help="Manifests with a Repository and its storage Secret"),
]
RepoNameOpt = Annotated[
    str | None, typer.Option("--repository-name", help="Which Repository of the -f manifests (if several)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
RetryLockOpt = Annotated[
    float,
    typer.Option("--retry-lock", help="Seconds to keep retrying when another process holds the lock"),
]


def os_error(exc: OSError) -> str:
    """An operating-system error as one line: the path and the cause."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or type(exc).__name__}"


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def opened(
    repo: str | None,
    password_file: Path | None,
    manifests: list[Path] | None,
    name: str | None,
    *,
    lock_wait: float = 0.0,
) -> Iterator[AnyRepository]:
    """The opened repository (stashplan's or a restic one); errors become one line and exit 1,
    warnings about skipped files are printed at the end."""
    try:
        storage, password = locate(repo, password_file, manifests, name)
        with open_repository(storage, password) as repository:
            if isinstance(repository, Repository):
                repository.lock_wait = lock_wait
            try:
                yield repository
            finally:
                for warning in getattr(repository, "warnings", []):
                    typer.echo(f"warning: {warning}", err=True)
    except StashplanError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(os_error(exc)) from None
    except Terminated as exc:
        # Locks are released and temporary files removed by now. A reader thread may still be blocked
        # on standard input, which would abort a normal interpreter shutdown: leave at once.
        typer.echo("error: terminated (SIGTERM); no snapshot was recorded by an unfinished backup", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 143)


@contextmanager
def opened_native(
    repo: str | None,
    password_file: Path | None,
    manifests: list[Path] | None,
    name: str | None,
    *,
    lock_wait: float = 0.0,
) -> Iterator[Repository]:
    """As `opened`, for commands that change a stashplan repository (repair, key): a restic one is refused."""
    with opened(repo, password_file, manifests, name, lock_wait=lock_wait) as repository:
        if not isinstance(repository, Repository):
            raise fail(f"{repository.storage.location} is a restic repository: use restic for this command")
        yield repository


def run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StashplanError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(os_error(exc)) from None
