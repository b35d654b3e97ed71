"""How a stashplan command ends when something goes wrong, the same for all three command groups (`stashplan`,
`stashplan repo`, `stashplan transfer`): one line on stderr starting `error:`, exit code 1 for a failure and 2
for bad input, and a traceback only with --debug."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import typer

from stashplan.errors import ManifestError, StashplanError, redact_urls

T = TypeVar("T")
FAILED = 1  # the command could not do what it was asked
BAD_INPUT = 2  # what it was given is wrong (as click's usage errors)


def one_line(text: object) -> str:
    """`text` on one line: line breaks inside a message become spaces, other control characters (a field name
    may hold any) are escaped."""
    flat = redact_urls(re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip())  # never a storage URL's password
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in flat)


def os_error(exc: OSError) -> str:
    """An operating-system error as one line: the path and the cause."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or type(exc).__name__}"


def error(message: object) -> None:
    """Print one `error:` line on stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)


def fail(message: object, code: int = FAILED) -> typer.Exit:
    """Print one `error:` line and return the Exit to raise."""
    error(message)
    return typer.Exit(code)


def run(fn: Callable[[], T], *, debug: bool = False) -> T:
    """Run a command body: stashplan's errors (each problem of a ManifestError), OS errors and ValueErrors
    become `error:` lines and exit 1; anything unforeseen too, naming its type (the traceback with --debug)."""
    try:
        return fn()
    except typer.Exit:
        raise
    except ManifestError as exc:
        if debug:
            raise
        for problem in exc.problems:
            error(problem)
        raise typer.Exit(FAILED) from None
    except OSError as exc:
        if debug:
            raise
        raise fail(os_error(exc) if exc.strerror else exc) from None
    except (StashplanError, ValueError) as exc:
        if debug:
            raise
        raise fail(exc) from None
    except Exception as exc:  # a bug or an unforeseen failure: still one line, the traceback on request
        if debug:
            raise
        raise fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)") from None
