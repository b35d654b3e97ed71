"""`stashplan repo repair index|packs|snapshots` and `stashplan repo key list|add|remove|passwd`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from stashplan.exits import fail
from stashplan.repository.cli_options import JsonOpt, RepositoryArgs, repository_command
from stashplan.repository.locating import password_from
from stashplan.repository.repair import RepairResult

repair_app = typer.Typer(
    help="Fix a damaged repository: rebuild the index, salvage packs, drop snapshots whose data is gone.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="Passwords of a repository: list, add, remove, passwd.", no_args_is_help=True)

NewPasswordOpt = Annotated[
    Path | None,
    typer.Option(
        "--new-password-file", help="File whose first line is the new password (else STASHPLAN_NEW_PASSWORD)"
    ),
]


def _report(result: RepairResult) -> None:
    for line in result.changed:
        typer.echo(line)
    for line in result.problems:
        typer.echo(f"warning: {line}", err=True)


@repair_app.command("index")
@repository_command(lock=True)
def repair_index(repository: RepositoryArgs) -> None:
    """Rebuild the index from the packs' own headers (replaces every index file)."""
    _report(repository.call_native(lambda r: r.repair_index()))


@repair_app.command("packs")
@repository_command(lock=True)
def repair_packs(
    repository: RepositoryArgs,
    packs: Annotated[list[str] | None, typer.Argument(help="Pack ids (default: every damaged pack)")] = None,
) -> None:
    """Salvage the readable blobs of damaged packs; the rest leave the index, so the next backup stores them."""
    _report(repository.call_native(lambda r: r.repair_packs(packs or None)))


@repair_app.command("snapshots")
@repository_command(lock=True)
def repair_snapshots(
    repository: RepositoryArgs,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be removed")] = False,
) -> None:
    """Remove snapshots that cannot be read or whose data is gone (after `repair packs`)."""
    result = repository.call_native(lambda r: r.repair_snapshots(dry_run=dry_run))
    _report(result)
    if not result.changed:
        typer.echo("every snapshot is complete")


def _new_password(path: Path | None) -> str:
    if path is not None:
        return password_from(path)
    password = os.environ.get("STASHPLAN_NEW_PASSWORD", "")
    if not password:
        raise fail("no new password: use --new-password-file or set STASHPLAN_NEW_PASSWORD")
    return password


@key_app.command("list")
@repository_command()
def key_list(repository: RepositoryArgs, json_out: JsonOpt = False) -> None:
    """List the key files (one per password); `*` marks the one this password opened."""
    infos, current = repository.call_native(lambda r: (r.list_keys(), r.key_name))
    if json_out:
        typer.echo(json.dumps([{**i.__dict__, "current": i.name == current} for i in infos]))
        return
    for i in infos:
        mark = "*" if i.name == current else " "
        typer.echo(f"{mark} {i.id[:8]}  {i.username or '-'}@{i.hostname or '-'}  {i.created or '-'}  {i.kdf}")


@key_app.command("add")
@repository_command()
def key_add(repository: RepositoryArgs, new_password_file: NewPasswordOpt = None) -> None:
    """Add a password (a new key file for the same master key; no data is rewritten)."""
    new = _new_password(new_password_file)
    name = repository.call_native(lambda r: r.add_key(new))
    typer.echo(f"added key {name.rsplit('/', 1)[1][:8]}")


@key_app.command("remove")
@repository_command()
def key_remove(
    repository: RepositoryArgs,
    key_id: Annotated[str, typer.Argument(help="Key id or unique prefix (see `key list`)")],
) -> None:
    """Remove a key file; the key this password opened cannot be removed (use `key passwd`)."""
    name = repository.call_native(lambda r: r.remove_key(key_id))
    typer.echo(f"removed key {name.rsplit('/', 1)[1][:8]}")


@key_app.command("passwd")
@repository_command()
def key_passwd(repository: RepositoryArgs, new_password_file: NewPasswordOpt = None) -> None:
    """Change this password: add a key for the new one, then remove the old key (the master key stays)."""
    new = _new_password(new_password_file)
    name = repository.call_native(lambda r: r.change_password(new))
    typer.echo(f"password changed: key {name.rsplit('/', 1)[1][:8]} replaces the old one")
