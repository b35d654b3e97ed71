"""The options every `stashplan repo` command shares and how a command opens its repository: one-line
errors (operating-system errors name the path and the cause), warnings about skipped files on stderr.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from providers.storage import Storage
from stashplan.errors import StashplanError
from stashplan.exits import fail, os_error
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
NoLockOpt = Annotated[
    bool,
    typer.Option(
        "--no-lock",
        help="Neither take nor check locks (as restic's --no-lock): read a read-only or full repository",
    ),
]
RetryLockOpt = Annotated[
    float,
    typer.Option("--retry-lock", help="Seconds to keep retrying when another process holds the lock"),
]


@dataclass(frozen=True)
class RepositoryArgs:
    """Which repository a command works on (its shared options) and how long to wait for a lock."""

    repo: str | None
    password_file: Path | None
    manifests: list[Path] | None
    name: str | None
    lock_wait: float = 0.0
    no_lock: bool = False

    def locate(self) -> tuple[Storage, str]:
        """The storage and password, without opening anything; errors become one line and exit 1."""
        return run(lambda: locate(self.repo, self.password_file, self.manifests, self.name))

    @contextmanager
    def open(self) -> Iterator[AnyRepository]:
        """The opened repository (stashplan's or a restic one); errors become one line and exit 1,
        warnings about skipped files are printed at the end."""
        try:
            storage, password = locate(self.repo, self.password_file, self.manifests, self.name)
            with open_repository(storage, password) as repository:
                repository.no_lock = self.no_lock
                if isinstance(repository, Repository):
                    repository.lock_wait = self.lock_wait
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
            typer.echo(
                "error: terminated (SIGTERM); no snapshot was recorded by an unfinished backup", err=True
            )
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exc.code if isinstance(exc.code, int) else 143)

    @contextmanager
    def open_native(self) -> Iterator[Repository]:
        """As `open`, for commands that change a stashplan repository (repair, key): a restic one is refused."""
        with self.open() as repository:
            if not isinstance(repository, Repository):
                raise fail(f"{repository.storage.location} is a restic repository: use restic for this command")
            yield repository

    def call(self, operation: Callable[[AnyRepository], T]) -> T:
        """`operation` on the opened repository, its errors as one line and exit 1."""
        with self.open() as repository:
            return run(lambda: operation(repository))

    def call_native(self, operation: Callable[[Repository], T]) -> T:
        """As `call`, on a stashplan repository only."""
        with self.open_native() as repository:
            return run(lambda: operation(repository))


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Parameter(name, kind, default=default, annotation=annotation)


_REPOSITORY_OPTIONS = [
    _option("repo", RepoOpt, None),
    _option("password_file", PasswordFileOpt, None),
    _option("filename", ManifestOpt, None),
    _option("repository_name", RepoNameOpt, None),
]


def repository_command(
    *, lock: bool = False, reads: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared options after its own (`--retry-lock` first when it takes the lock,
    `--no-lock` when it only `reads`); the command receives them as its `repository` argument, a
    `RepositoryArgs`."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command, eval_str=True)
        shared = [_option("retry_lock", RetryLockOpt, 0.0)] if lock else []
        shared += [_option("no_lock", NoLockOpt, False)] if reads else []
        shared += _REPOSITORY_OPTIONS
        params = [p for p in own.parameters.values() if p.name != "repository"] + shared

        @functools.wraps(command)
        def with_options(**kwargs: Any) -> None:
            repository = RepositoryArgs(
                kwargs.pop("repo"),
                kwargs.pop("password_file"),
                kwargs.pop("filename"),
                kwargs.pop("repository_name"),
                kwargs.pop("retry_lock", 0.0),
                kwargs.pop("no_lock", False),
            )
            command(repository=repository, **kwargs)

        # Typer reads the options from the signature and its annotations.
        with_options.__dict__["__signature__"] = own.replace(parameters=params)
        with_options.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return with_options

    return decorate


def run(fn: Callable[[], T]) -> T:
    """A repository command's body: stashplan's and OS errors become one line and exit 1 (stashplan.exits)."""
    try:
        return fn()
    except StashplanError as exc:
        raise fail(exc) from None
    except OSError as exc:
        raise fail(os_error(exc)) from None
