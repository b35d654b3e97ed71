"""`stashplan repo ...`: the repository commands, usable like `restic` (init, backup --stdin, restore, ...).

The repository comes from `--repo local:/path|s3:https://host/bucket/prefix` with the password from
`--password-file` or STASHPLAN_PASSWORD, or from `-f` manifests holding a Repository and its storage
Secret (RESTIC_PASSWORD, AWS_* keys). Each command opens the repository, calls one operation, prints
a summary; errors are one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

import typer

from providers.storage import open_storage
from stashplan.errors import StashplanError
from stashplan.repository.locating import locate
from stashplan.repository.opening import AnyRepository, open_repository
from stashplan.repository.progress import human, progress_reporter
from stashplan.repository.repo import Repository
from stashplan.repository.restic.repo import ResticRepository
from stashplan.repository.retention import RetentionPolicy
from stashplan.repository.snapshots import Snapshot

app = typer.Typer(
    help="Snapshot repository commands: init, backup --stdin, restore, snapshots, forget, prune, check, stats, unlock, migrate.",
    no_args_is_help=True,
)
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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def _opened(
    repo: str | None, password_file: Path | None, manifests: list[Path] | None, name: str | None
) -> Iterator[AnyRepository]:
    try:
        storage, password = locate(repo, password_file, manifests, name)
        with open_repository(storage, password) as opened:
            yield opened
    except StashplanError as exc:
        raise _fail(str(exc)) from None


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StashplanError as exc:
        raise _fail(str(exc)) from None


def _snap_json(s: Snapshot) -> dict[str, Any]:
    return {
        "id": s.id,
        "short_id": s.short_id,
        "time": s.time.isoformat(),
        "end_time": s.end_time.isoformat(),
        "hostname": s.hostname,
        "tags": list(s.tags),
        "source": s.source,
        "filename": s.filename,
        "total_size": s.total_size,
        "added_size": s.added_size,
        "sha256": s.sha256,
    }


def _table(snaps: list[Snapshot]) -> str:
    rows = [("ID", "Time", "Host", "Tags", "Size", "Source")]
    rows += [
        (
            s.short_id,
            f"{s.time:%Y-%m-%d %H:%M:%S}",
            s.hostname,
            ",".join(s.tags),
            human(s.total_size),
            s.source,
        )
        for s in snaps
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@app.command()
def init(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Create a new, empty repository."""
    try:
        storage, password = locate(repo, password_file, filename, repository_name)
        created = Repository.init(storage, password)
    except StashplanError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"created repository {created.id[:8]} at {storage.location}")


@app.command()
def backup(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the data to back up from standard input")
    ] = False,
    host: Annotated[str | None, typer.Option("--host", help="Hostname recorded in the snapshot")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable; a,b adds both)")] = None,
    stdin_filename: Annotated[
        str, typer.Option("--stdin-filename", help="File name recorded for the stream")
    ] = "stdin",
    source: Annotated[
        str, typer.Option("--source", help="Description of where the stream came from")
    ] = "stdin",
    json_out: JsonOpt = False,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Back up standard input into a new snapshot (the manifest is written last)."""
    if not stdin:
        raise _fail("only --stdin backups are supported: pipe the data in and pass --stdin")
    with (
        _opened(repo, password_file, filename, repository_name) as opened,
        progress_reporter("backup") as progress,
    ):
        snap = _run(
            lambda: opened.backup(
                sys.stdin.buffer,
                hostname=host or socket.gethostname(),
                tags=tag or (),
                source=source,
                filename=stdin_filename,
                progress=progress,
            )
        )
    if json_out:
        typer.echo(json.dumps(_snap_json(snap)))
        return
    seconds = max((snap.end_time - snap.time).total_seconds(), 1e-6)
    typer.echo(
        f"snapshot {snap.short_id} saved: {human(snap.total_size)} read, {human(snap.added_size)} added, "
        f"{human(snap.total_size / seconds)}/s, sha256 {snap.sha256}"
    )


@app.command()
def restore(
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique id prefix, or latest")] = "latest",
    target: Annotated[str, typer.Option("--target", help="File to write, or - for standard output")] = "-",
    host: Annotated[
        str | None, typer.Option("--host", help="With latest: newest snapshot of this host")
    ] = None,
    path: Annotated[
        str | None,
        typer.Option("--path", help="restic repositories: the file inside the snapshot (default: its only file)"),
    ] = None,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Stream a snapshot out, verifying its SHA-256; fails naming any missing or corrupt pack or chunk."""
    with _opened(repo, password_file, filename, repository_name) as opened:
        if path is not None and not isinstance(opened, ResticRepository):
            raise _fail("--path applies to restic repositories; a stashplan snapshot is one stream")
        out: BinaryIO
        if target == "-":
            out = sys.stdout.buffer
        else:
            out = open(target, "wb")  # noqa: SIM115 (closed below)
        try:
            with progress_reporter("restore") as progress:
                if isinstance(opened, ResticRepository):
                    snap = _run(
                        lambda: opened.restore(snapshot, out, hostname=host, progress=progress, path=path)
                    )
                else:
                    snap = _run(lambda: opened.restore(snapshot, out, hostname=host, progress=progress))
            out.flush()
        finally:
            if target != "-":
                out.close()
    verified = "sha256 verified" if snap.sha256 else "every blob's SHA-256 verified"
    typer.echo(f"restored snapshot {snap.short_id}: {human(snap.total_size)}, {verified}", err=True)


@app.command()
def snapshots(
    host: Annotated[str | None, typer.Option("--host")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag")] = None,
    json_out: JsonOpt = False,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """List snapshots, oldest first, optionally only of a host or with all given tags."""
    with _opened(repo, password_file, filename, repository_name) as opened:
        snaps = _run(lambda: opened.snapshots(hostname=host, tags=tag or ()))
    if json_out:
        typer.echo(json.dumps([_snap_json(s) for s in snaps]))
    else:
        typer.echo(_table(snaps))
        typer.echo(f"{len(snaps)} snapshots")


@app.command()
def forget(
    keep_last: Annotated[int, typer.Option("--keep-last")] = 0,
    keep_hourly: Annotated[int, typer.Option("--keep-hourly")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily")] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly")] = 0,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly")] = 0,
    keep_tag: Annotated[
        list[str] | None, typer.Option("--keep-tag", help="Keep snapshots with all these tags (a,b)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be removed")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Prune after removing snapshots")] = False,
    json_out: JsonOpt = False,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Remove snapshots by restic's retention rules, per host and file name."""
    policy = RetentionPolicy(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, tuple(keep_tag or ())
    )
    with _opened(repo, password_file, filename, repository_name) as opened:
        result = _run(lambda: opened.forget(policy, dry_run=dry_run, prune=prune))
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "keep": [_snap_json(s) for s in result.keep],
                    "remove": [_snap_json(s) for s in result.remove],
                }
            )
        )
        return
    typer.echo(f"Applying policy: {policy.describe()}")
    typer.echo(f"keep {len(result.keep)} snapshots:")
    for s in result.keep:
        typer.echo(
            f"  {s.short_id}  {s.time:%Y-%m-%d %H:%M:%S}  {s.hostname}  {', '.join(result.reasons.get(s.id, ()))}"
        )
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{verb} {len(result.remove)} snapshots:")
    for s in result.remove:
        typer.echo(f"  {s.short_id}  {s.time:%Y-%m-%d %H:%M:%S}  {s.hostname}")


@app.command(name="prune")
def prune_cmd(
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Delete data no snapshot references (takes the exclusive lock)."""
    with _opened(repo, password_file, filename, repository_name) as opened:
        result = _run(opened.prune)
    typer.echo(
        f"pruned: {result.packs_deleted} packs deleted, {result.packs_repacked} repacked, "
        f"{result.blobs_removed} blobs removed, {human(result.bytes_freed)} freed"
    )


@app.command()
def check(
    read_data: Annotated[bool, typer.Option("--read-data", help="Also read and verify every blob")] = False,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Check the repository's structure (and with --read-data every blob); exit 1 on any error."""
    with _opened(repo, password_file, filename, repository_name) as opened:
        result = _run(lambda: opened.check(read_data=read_data))
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for error in result.errors:
        typer.echo(f"error: {error}", err=True)
    if not result.ok:
        raise typer.Exit(1)
    extra = f", {result.blobs_read} blobs read" if read_data else ""
    typer.echo(f"no errors: {result.snapshots} snapshots, {result.packs} packs{extra}")


@app.command()
def stats(
    json_out: JsonOpt = False,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Stored size, snapshot count, raw size and dedup ratio."""
    with _opened(repo, password_file, filename, repository_name) as opened:
        s = _run(opened.stats)
    if json_out:
        typer.echo(json.dumps(s.__dict__))
        return
    typer.echo(f"snapshots:     {s.snapshot_count}")
    typer.echo(f"stored size:   {human(s.total_size)} in {s.pack_count} packs, {s.blob_count} blobs")
    typer.echo(f"raw size:      {human(s.raw_size)}")
    typer.echo(f"dedup ratio:   {s.dedup_ratio:.2f}")


@app.command()
def migrate(
    from_repo: Annotated[
        str | None, typer.Option("--from", help="The restic repository (Stash's) to copy from")
    ] = None,
    to_repo: Annotated[
        str | None, typer.Option("--to", help="The stashplan repository to copy into (created if absent)")
    ] = None,
    snapshots: Annotated[
        list[str] | None, typer.Option("--snapshots", help="restic snapshot ids or prefixes (a,b); default all")
    ] = None,
    from_password_file: Annotated[
        Path | None,
        typer.Option("--from-password-file", help="Password of --from (else RESTIC_PASSWORD, else the target's)"),
    ] = None,
    from_repository_name: Annotated[
        str | None, typer.Option("--from-repository-name", help="With -f: the Stash Repository to copy from")
    ] = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Copy restic snapshots (Stash's backups) into a stashplan repository, keeping time, host and tags."""
    from stashplan.repository.locating import from_manifests, password_from
    from stashplan.repository.restic.migrate import migrate as run_migrate
    from stashplan.repository.restic.migrate import plan as plan_migration

    wanted = [s.strip() for entry in snapshots or () for s in entry.split(",") if s.strip()]
    try:
        if to_repo:
            storage, to_password = locate(to_repo, password_file, None, None)
        else:
            storage, to_password = locate(None, password_file, filename, repository_name)
        if filename and from_repository_name:
            source_storage, from_password = from_manifests(filename, from_repository_name)
        elif from_repo:
            source_storage = open_storage(from_repo)
            from_password = os.environ.get("RESTIC_PASSWORD", "") or to_password
        else:
            raise StashplanError("no source: use --from <restic repository> or -f with --from-repository-name")
        if from_password_file is not None:
            from_password = password_from(from_password_file)
        with ResticRepository.open(source_storage, from_password) as source:
            plan_migration(source, wanted)  # refuses before the target is created or touched
            with Repository.open_or_init(storage, to_password) as target:
                result = run_migrate(
                    source,
                    target,
                    wanted,
                    lambda c: typer.echo(
                        f"restic {c.restic_id[:8]} -> {c.snapshot.short_id}  {c.snapshot.time:%Y-%m-%d %H:%M:%S}  "
                        f"{c.snapshot.hostname}  {human(c.snapshot.total_size)}"
                    ),
                )
    except StashplanError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"copied {len(result.copied)} snapshots, {len(result.skipped)} already copied before")


@app.command()
def unlock(
    remove_all: Annotated[
        bool, typer.Option("--remove-all", help="Remove every lock, not only stale ones")
    ] = False,
    repo: RepoOpt = None,
    password_file: PasswordFileOpt = None,
    filename: ManifestOpt = None,
    repository_name: RepoNameOpt = None,
) -> None:
    """Remove stale locks (of dead processes, or not refreshed for 30 minutes)."""
    with _opened(repo, password_file, filename, repository_name) as opened:
        removed = _run(lambda: opened.unlock(remove_all=remove_all))
    typer.echo(f"removed {len(removed)} locks" + "".join(f"\n  {n}" for n in removed))


if __name__ == "__main__":
    app()
