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
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

import typer

from providers.storage import open_storage
from stashplan.errors import StashplanError, redact_urls
from stashplan.exits import error, fail
from stashplan.repository.cli_maintenance import key_app, repair_app
from stashplan.repository.cli_options import (
    JsonOpt,
    ManifestOpt,
    PasswordFileOpt,
    RepoNameOpt,
    RepositoryArgs,
    repository_command,
    run,
)
from stashplan.repository.locating import locate
from stashplan.repository.progress import progress_reporter
from stashplan.repository.prune import plan_lines
from stashplan.repository.repo import Repository
from stashplan.repository.restic.repo import ResticRepository
from stashplan.repository.retention import RetentionPolicy
from stashplan.repository.snapshots import InvokerRef, Snapshot, TargetRef
from stashplan.units import human_size

app = typer.Typer(
    help="Snapshot repository commands: init, backup --stdin, restore, snapshots, forget, prune, check, "
    "stats, unlock, migrate, repair, key.",
    no_args_is_help=True,
    add_completion=False,  # completion belongs to the top-level `stashplan` command
)
app.add_typer(repair_app, name="repair")
app.add_typer(key_app, name="key")


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
        "checksum": s.checksum,  # "<algorithm>:<hex>" of the stream: blake3 (format 4) or sha256
        **({"sha256": s.checksum[7:]} if s.checksum.startswith("sha256:") else {}),
        **({"invoker": str(s.invoker)} if s.invoker is not None else {}),
        **({"target": str(s.target)} if s.target is not None else {}),
    }


RefT = TypeVar("RefT")
InvokerOpt = Annotated[
    str,
    typer.Option(
        "--invoker",
        help="KIND/NAMESPACE/NAME of the object the backup is for (e.g. BackupConfiguration/demo/app-db-backup)",
    ),
]


def _ref(parse: Callable[[str], RefT], option: str, text: str) -> RefT | None:
    """`text` parsed by `parse`, None when empty; a bad value exits 1 with one line naming the option."""
    if not text:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise fail(f"{option}: {exc}") from None


def _table(snaps: list[Snapshot]) -> str:
    rows = [("ID", "Time", "Host", "Tags", "Size", "Source")]
    rows += [
        (
            s.short_id,
            f"{s.time:%Y-%m-%d %H:%M:%S}",
            s.hostname,
            ",".join(s.tags),
            human_size(s.total_size),
            s.source,
        )
        for s in snaps
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@app.command()
@repository_command()
def init(repository: RepositoryArgs) -> None:
    """Create a new, empty repository."""
    storage, password = repository.locate()
    created = run(lambda: Repository.init(storage, password))
    typer.echo(f"created repository {created.id[:8]} at {redact_urls(storage.location)}")


@app.command()
@repository_command()
def backup(
    repository: RepositoryArgs,
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
    invoker: InvokerOpt = "",
    target: Annotated[
        str, typer.Option("--target", help="NAMESPACE/NAME of the AppBinding the stream was dumped from")
    ] = "",
    json_out: JsonOpt = False,
) -> None:
    """Back up standard input into a new snapshot (the manifest is written last)."""
    if not stdin:
        raise fail("only --stdin backups are supported: pipe the data in and pass --stdin")
    invoker_ref = _ref(InvokerRef.parse, "--invoker", invoker)
    target_ref = _ref(TargetRef.parse, "--target", target)
    with repository.open() as opened, progress_reporter("backup") as progress:
        snap = run(
            lambda: opened.backup(
                sys.stdin.buffer,
                hostname=host or socket.gethostname(),
                tags=tag or (),
                source=source,
                filename=stdin_filename,
                progress=progress,
                invoker=invoker_ref,
                target=target_ref,
            )
        )
    if json_out:
        typer.echo(json.dumps(_snap_json(snap)))
        return
    seconds = max((snap.end_time - snap.time).total_seconds(), 1e-6)
    typer.echo(
        f"snapshot {snap.short_id} saved: {human_size(snap.total_size)} read, {human_size(snap.added_size)} added, "
        f"{human_size(snap.total_size / seconds)}/s, {snap.checksum.replace(':', ' ', 1)}"
    )


@app.command()
@repository_command(reads=True)
def restore(
    repository: RepositoryArgs,
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, unique id prefix, or latest")] = "latest",
    target: Annotated[
        str, typer.Option("--target", help="File to write, or - for standard output (restic files: a directory)")
    ] = "-",
    host: Annotated[
        str | None, typer.Option("--host", help="With latest: newest snapshot of this host")
    ] = None,
    path: Annotated[
        str | None,
        typer.Option("--path", help="restic repositories: the file inside the snapshot (default: its only file)"),
    ] = None,
    restore_special: Annotated[
        bool,
        typer.Option(
            "--restore-special",
            help="restic directory restores: also recreate device nodes (as root) and setuid/setgid bits",
        ),
    ] = False,
) -> None:
    """Stream a snapshot out, verifying every chunk and the stream's checksum; fails naming any missing or corrupt
    pack or chunk.

    A `--target` file is written 0600 and renamed to its name only when the checksum matched:
    a failed restore leaves nothing behind."""
    with repository.open() as opened_repo:
        if path is not None and not isinstance(opened_repo, ResticRepository):
            raise fail("--path applies to restic repositories; a stashplan snapshot is one stream")
        if isinstance(opened_repo, ResticRepository) and target != "-" and run(
            lambda: opened_repo.selects_directory(snapshot, hostname=host, path=path)
        ):
            with progress_reporter("restore") as progress:
                snap, done = run(lambda: opened_repo.restore_directory(
                    snapshot, Path(target), hostname=host, path=path, progress=progress,
                    restore_special=restore_special))
            typer.echo(f"restored snapshot {snap.short_id} into {target}: {done.summary()}", err=True)
            return

        def restore_to(out: BinaryIO) -> Snapshot:
            with progress_reporter("restore") as progress:
                if isinstance(opened_repo, ResticRepository):
                    return opened_repo.restore(snapshot, out, hostname=host, progress=progress, path=path)
                return opened_repo.restore(snapshot, out, hostname=host, progress=progress)

        if target == "-":
            snap = run(lambda: restore_to(sys.stdout.buffer))
            sys.stdout.buffer.flush()
        else:
            snap = run(lambda: _restore_to_file(restore_to, Path(target)))
    algorithm = snap.checksum.partition(":")[0]
    verified = f"{algorithm} verified" if algorithm else "every blob's SHA-256 verified"
    typer.echo(f"restored snapshot {snap.short_id}: {human_size(snap.total_size)}, {verified}", err=True)


def _restore_to_file(restore_to: Callable[[BinaryIO], Snapshot], target: Path) -> Snapshot:
    """Restore into a temporary file in the target's directory, then rename it to `target`."""
    tmp = target.with_name(f".{target.name}.stashplan-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as out:
            snap = restore_to(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        return snap
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@app.command()
@repository_command(reads=True)
def snapshots(
    repository: RepositoryArgs,
    host: Annotated[str | None, typer.Option("--host")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List snapshots, oldest first, optionally only of a host or with all given tags."""
    snaps = repository.call(lambda r: r.snapshots(hostname=host, tags=tag or ()))
    if json_out:
        typer.echo(json.dumps([_snap_json(s) for s in snaps]))
    else:
        typer.echo(_table(snaps))
        typer.echo(f"{len(snaps)} snapshots")


@app.command()
@repository_command(lock=True)
def forget(
    repository: RepositoryArgs,
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
    invoker: Annotated[
        str, typer.Option("--invoker", help="Only the snapshots of this KIND/NAMESPACE/NAME (its retention)")
    ] = "",
    json_out: JsonOpt = False,
) -> None:
    """Remove snapshots by restic's retention rules, per invoker, host and file name."""
    policy = RetentionPolicy(
        keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, tuple(keep_tag or ())
    )
    only = _ref(InvokerRef.parse, "--invoker", invoker)
    result = repository.call(lambda r: r.forget(policy, dry_run=dry_run, prune=prune, invoker=only))
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
@repository_command(lock=True)
def prune_cmd(
    repository: RepositoryArgs,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print the plan: the packs to delete or repack; writes nothing")
    ] = False,
) -> None:
    """Delete data no snapshot references (takes the exclusive lock)."""
    if dry_run:
        plan = repository.call(lambda r: r.prune_plan() if isinstance(r, Repository) else r.prune())
        typer.echo("\n".join(plan_lines(plan)))
        return
    result = repository.call(lambda r: r.prune())
    typer.echo(
        f"pruned: {result.packs_deleted} packs deleted, {result.packs_repacked} repacked, "
        f"{result.blobs_removed} blobs removed, {human_size(result.bytes_freed)} freed"
        + (
            f", {result.leftovers_removed} leftovers of interrupted writes removed"
            if result.leftovers_removed
            else ""
        )
    )


@app.command()
@repository_command(reads=True)
def check(
    repository: RepositoryArgs,
    read_data: Annotated[bool, typer.Option("--read-data", help="Also read and verify every pack")] = False,
    read_data_subset: Annotated[
        str | None,
        typer.Option(
            "--read-data-subset",
            help="Read and verify a share of the packs: n/m (group n of m, by pack id) or p% (random)",
        ),
    ] = None,
) -> None:
    """Check the repository's structure (and with --read-data every pack); exit 1 on any error."""
    if read_data and read_data_subset:
        raise fail("--read-data and --read-data-subset exclude each other")
    with repository.open() as opened:
        try:
            if isinstance(opened, Repository):
                result = run(lambda: opened.check(read_data=read_data, subset=read_data_subset))
            elif read_data_subset:
                raise fail("--read-data-subset applies to stashplan repositories")
            else:
                result = run(lambda: opened.check(read_data=read_data))
        except ValueError as exc:
            raise fail(str(exc)) from None
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for problem in result.errors:
        error(problem)
    if not result.ok:
        raise typer.Exit(1)
    extra = (
        f", {result.packs_read} packs and {result.blobs_read} blobs read"
        if read_data or read_data_subset
        else ""
    )
    typer.echo(f"no errors: {result.snapshots} snapshots, {result.packs} packs{extra}")


@app.command()
@repository_command(reads=True)
def stats(repository: RepositoryArgs, json_out: JsonOpt = False) -> None:
    """Stored size, snapshot count, raw size and dedup ratio."""
    s = repository.call(lambda r: r.stats())
    if json_out:
        typer.echo(json.dumps(s.__dict__))
        return
    typer.echo(f"snapshots:     {s.snapshot_count}")
    typer.echo(f"stored size:   {human_size(s.total_size)} in {s.pack_count} packs, {s.blob_count} blobs")
    typer.echo(f"raw size:      {human_size(s.raw_size)}")
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
                        f"{c.snapshot.hostname}  {human_size(c.snapshot.total_size)}"
                    ),
                )
            for warning in source.warnings:  # nodes a tar archive of a file snapshot cannot hold
                typer.echo(f"warning: {warning}", err=True)
    except StashplanError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"copied {len(result.copied)} snapshots, {len(result.skipped)} already copied before")


@app.command()
@repository_command()
def unlock(
    repository: RepositoryArgs,
    remove_all: Annotated[
        bool, typer.Option("--remove-all", help="Remove every lock, not only stale ones")
    ] = False,
) -> None:
    """Remove stale locks (of dead processes, or not refreshed for 30 minutes)."""
    removed = repository.call(lambda r: r.unlock(remove_all=remove_all))
    typer.echo(f"removed {len(removed)} locks" + "".join(f"\n  {n}" for n in removed))


if __name__ == "__main__":
    app()
