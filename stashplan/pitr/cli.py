"""`stashplan pg ...`: PostgreSQL point-in-time recovery — `basebackup`, `wal-push` (archive_command),
`wal-receive` (a replication slot), `wal-fetch` (restore_command), `restore` to a time, LSN, restore point or
the latest WAL, `wal-verify`, and `forget` (base backups by policy, then the WAL none of the kept ones needs).

Each command parses its options, calls one function of stashplan.pitr and prints a summary; errors are one
line on stderr. Exit codes follow what PostgreSQL expects of archive and restore commands (see wal-fetch).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from stashplan.errors import StashplanError
from stashplan.exits import BAD_INPUT, fail
from stashplan.operator.logs import configure_logging
from stashplan.pitr import basebackup as base
from stashplan.pitr import forget as forgetting
from stashplan.pitr import lookahead, spool_serve, walstore
from stashplan.pitr import prefetch as prefetching
from stashplan.pitr import receive as receiving
from stashplan.pitr import restore as restoring
from stashplan.pitr.inventory import take_inventory
from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.recovery_conf import restore_command
from stashplan.pitr.timelines import chain, describe_chain
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn, parse_lsn
from stashplan.pitr.window import Target, TargetKind, Window, describe
from stashplan.repository import cli_options
from stashplan.repository.cli_options import JsonOpt, RepositoryArgs, repository_command
from stashplan.repository.repo import Repository
from stashplan.repository.retention import RetentionPolicy
from stashplan.units import human_size

app = typer.Typer(
    help="PostgreSQL point-in-time recovery: base backups and WAL in the repository, restore to a point.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # as the full CLI: `stashplan pg` starts on this app alone (stashplan.entry)
)
FETCH_ERROR = 126  # restore_command: above 125 PostgreSQL stops recovery instead of taking "not found"
T = TypeVar("T")


def run(fn: Callable[[], T]) -> T:
    """A command's body: stashplan's, OS and value errors (a target outside the window, a name PostgreSQL would
    not archive) become one `error:` line and exit 1."""
    try:
        return cli_options.run(fn)
    except ValueError as exc:
        raise fail(exc) from None


SegSizeOpt = Annotated[
    int, typer.Option("--wal-segsize", help="WAL segment size in MiB (initdb --wal-segsize; default 16)")
]


@app.command()
@repository_command(lock=True)
def basebackup(
    repository: RepositoryArgs,
    host: Annotated[str, typer.Option("--host", "-h", help="Database server host or socket directory")],
    port: Annotated[int, typer.Option("--port", "-p", help="Database server port")] = 5432,
    user: Annotated[
        str, typer.Option("--user", "-U", help="Role with the REPLICATION attribute")
    ] = "postgres",
    pg_basebackup: Annotated[
        str, typer.Option("--pg-basebackup", help="The pg_basebackup binary (13 or newer)")
    ] = "pg_basebackup",
    json_out: JsonOpt = False,
) -> None:
    """Stream a base backup (pg_basebackup -Ft -D - -X none) into the repository. The password is
    PGPASSWORD (or ~/.pgpass), never an option."""
    argv = base.basebackup_argv(pg_basebackup, host, port, user)
    with repository.open_native() as repo:
        found, snap = run(
            lambda: base.run_basebackup(repo, argv, hostname=host, source=f"postgres:{host}:{port}")
        )
    if json_out:
        typer.echo(
            json.dumps(_backup_json(found) | {"total_size": snap.total_size, "added_size": snap.added_size})
        )
        return
    typer.echo(
        f"base backup {snap.short_id} saved: timeline {found.timeline}, WAL {format_lsn(found.start_lsn)}.."
        f"{format_lsn(found.stop_lsn)}, {human_size(snap.total_size)} read, {human_size(snap.added_size)} added"
    )


@app.command("wal-push")
@repository_command()
def wal_push(
    repository: RepositoryArgs,
    path: Annotated[Path, typer.Argument(help="The WAL file (%p in archive_command)")],
    spool: Annotated[
        Path | None,
        typer.Option("--spool", help="Look ahead: push the next ready files too, recorded in this directory"),
    ] = None,
    look_ahead: Annotated[
        int, typer.Option("--look-ahead", min=0, help="With --spool: how many ready files to push ahead")
    ] = 16,
) -> None:
    """Archive one WAL file (segment, .history, .backup or .partial). The same file again is a no-op (exit 0);
    a different file under an archived name is refused (exit 1). With --spool, the files PostgreSQL has ready
    next are pushed too, several at once, and its calls for them answered from the spool."""
    try:
        if spool is not None and lookahead.pushed_ahead(spool, path):
            typer.echo(f"{path.name}: pushed ahead", err=True)
            return
    except OSError as exc:
        raise fail(f"wal-push {path.name}: {exc}") from None
    with repository.open_native() as repo:
        result = run(lambda: walstore.push(repo, path))
        typer.echo(f"{path.name}: {result.value}", err=True)
        if spool is not None and look_ahead:
            ahead = lookahead.ready_after(path, look_ahead)
            failed = lookahead.push_ahead(spool, ahead, lambda p: walstore.push(repo, p))
            if ahead:
                typer.echo(f"pushed {len(ahead) - len(failed)} ready files ahead", err=True)


@app.command("wal-receive")
@repository_command()
def wal_receive(
    repository: RepositoryArgs,
    host: Annotated[str, typer.Option("--host", "-h", help="Database server host or socket directory")],
    directory: Annotated[
        Path, typer.Option("--directory", "-D", help="Where pg_receivewal writes (kept between runs)")
    ],
    port: Annotated[int, typer.Option("--port", "-p", help="Database server port")] = 5432,
    user: Annotated[
        str, typer.Option("--user", "-U", help="Role with the REPLICATION attribute")
    ] = "postgres",
    slot: Annotated[
        str, typer.Option("--slot", help="Physical replication slot (created on first use)")
    ] = "stashplan",
    interval: Annotated[
        float, typer.Option("--partial-interval", help="Seconds between pushes of the partial segment")
    ] = 5.0,
    pushgateway: Annotated[
        str,
        typer.Option(
            "--pushgateway-url", envvar="PROMETHEUS_PUSHGATEWAY_URL", help="Where to push the slot's lag"
        ),
    ] = "",
    pg_receivewal: Annotated[
        str, typer.Option("--pg-receivewal", help="The pg_receivewal binary (15 or newer)")
    ] = "pg_receivewal",
    psql: Annotated[str, typer.Option("--psql", help="The psql binary (to measure the slot's lag)")] = "psql",
    dbname: Annotated[str, typer.Option("--dbname", help="Database psql connects to")] = "postgres",
    segsize: SegSizeOpt = DEFAULT_SEGMENT_SIZE >> 20,
) -> None:
    """Stream WAL over a replication slot (pg_receivewal) into the repository: each completed segment and
    history file as wal-push stores it, the partial segment every --partial-interval seconds; the slot's lag
    is logged and pushed to the Pushgateway. Stops on SIGTERM after pushing the partial segment. A slot keeps
    WAL on the server while this is not running: set max_slot_wal_keep_size (see the README)."""
    try:
        options = receiving.Options(
            receiving.check_slot(slot), directory, interval, pg_receivewal, psql, pushgateway, segsize << 20
        )
    except ValueError as exc:
        raise fail(exc, BAD_INPUT) from None
    if interval <= 0:
        raise fail(f"--partial-interval {interval}: must be more than 0 seconds", BAD_INPUT)
    level = min(logging.INFO, logging.getLogger("stashplan").getEffectiveLevel())  # -v: DEBUG
    configure_logging(level, structured=not sys.stderr.isatty())
    with repository.open_native() as repo:
        run(lambda: receiving.Receiver(repo, receiving.Source(host, port, user, dbname), options).run())


@app.command("wal-fetch")
@repository_command()
def wal_fetch(
    repository: RepositoryArgs,
    name: Annotated[str, typer.Argument(help="The WAL file name (%f in restore_command)")],
    destination: Annotated[Path, typer.Argument(help="Where to write it (%p in restore_command)")],
    spool: Annotated[
        Path | None,
        typer.Option("--spool", help="Prefetch: answer from this directory, fetch the next segments into it"),
    ] = None,
    look_ahead: Annotated[
        int, typer.Option("--look-ahead", min=0, help="With --spool: how many segments to fetch ahead")
    ] = prefetching.DEFAULT_AHEAD,
    segsize: SegSizeOpt = DEFAULT_SEGMENT_SIZE >> 20,
    not_found_exit: Annotated[
        int,
        typer.Option(
            "--not-found-exit",
            min=1,
            max=125,
            help="Exit status when the archive does not hold the file (restore_command's wrapper maps it to 1)",
        ),
    ] = 1,
) -> None:
    """Restore one archived WAL file. Exit 1 when the archive does not hold it (PostgreSQL then ends recovery
    there); exit 126 on any other failure (wrong password, storage down, a damaged object), which makes
    PostgreSQL stop instead of promoting early. With --spool, a file fetched ahead is moved into place without
    opening the repository, and a fetch from the repository goes on with the next segments in the background."""
    try:
        if spool is not None and spool_serve.serve(spool, name, destination):
            return
        storage, _password = repository.locate()
        found = not walstore.absent(storage, name)
        if found:
            with repository.open_native() as repo:
                found = walstore.fetch(repo, name, destination)
                if found and spool is not None:
                    spool_serve.consumed(spool, name)
                if found and spool is not None and look_ahead:
                    _fetch_ahead(repo, spool, prefetching.segments_after(name, look_ahead, segsize << 20))
    except typer.Exit as exc:
        raise typer.Exit(FETCH_ERROR if exc.exit_code else 0) from None
    except ValueError as exc:
        raise fail(exc, FETCH_ERROR) from None
    except (StashplanError, OSError) as exc:
        raise fail(f"wal-fetch {name}: {exc}", FETCH_ERROR) from None
    if not found:
        typer.echo(f"{name}: not in the archive", err=True)
        raise typer.Exit(not_found_exit)


def _fetch_ahead(repo: Repository, spool: Path, names: list[str]) -> None:
    """Fetch `names` into the spool in a background process (PostgreSQL replays meanwhile; its calls for them
    wait while they are pending); in this process where a fork is not safe."""
    marked: list[str] = []
    try:
        if not prefetching.in_background(
            lambda: prefetching.fill(repo, spool, marked),
            lambda: marked.extend(spool_serve.mark_pending(spool, names)),
        ):
            prefetching.prefetch(repo, spool, names)
    except OSError:
        pass  # no spool (any more): PostgreSQL's calls fetch these files themselves


def _target(time: str | None, lsn: str | None, name: str | None, latest: bool) -> Target:
    given = [t for t in (time, lsn, name) if t is not None] + (["latest"] if latest else [])
    if len(given) != 1:
        raise fail("give exactly one of --target-time, --target-lsn, --target-name, --latest", BAD_INPUT)
    try:
        if time is not None:
            when = datetime.fromisoformat(time.replace("Z", "+00:00"))
            return Target(TargetKind.TIME, time=when if when.tzinfo else when.replace(tzinfo=UTC))
        if lsn is not None:
            return Target(TargetKind.LSN, lsn=parse_lsn(lsn))
    except ValueError as exc:
        raise fail(f"--target-{'time' if time is not None else 'lsn'}: {exc}", BAD_INPUT) from None
    return Target(TargetKind.NAME, name=name) if name is not None else Target(TargetKind.LATEST)


@app.command("restore")
@repository_command()
def restore_cmd(
    repository: RepositoryArgs,
    pgdata: Annotated[Path, typer.Option("--pgdata", "-D", help="Empty (or new) data directory to write")],
    target_time: Annotated[
        str | None, typer.Option("--target-time", help="ISO 8601 time; UTC unless it says")
    ] = None,
    target_lsn: Annotated[str | None, typer.Option("--target-lsn", help="LSN, e.g. 0/3000060")] = None,
    target_name: Annotated[
        str | None, typer.Option("--target-name", help="A pg_create_restore_point name")
    ] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Replay every archived segment")] = False,
    timeline: Annotated[
        str,
        typer.Option(
            "--target-timeline",
            help="Recover along this timeline (a number), or the newest that reaches the target",
        ),
    ] = "latest",
    backup: Annotated[
        str | None, typer.Option("--backup", help="Use this base backup (snapshot id prefix)")
    ] = None,
    archive_mode: Annotated[
        str,
        typer.Option(
            "--archive-mode",
            help="'preserve' the base backup's archiving, or 'off': a restored copy (a drill) then archives "
            "no new timeline into the repository",
        ),
    ] = "preserve",
    command: Annotated[
        str | None,
        typer.Option("--stashplan-command", help="How the server runs stashplan (default: this one)"),
    ] = None,
    prefetch: Annotated[
        int,
        typer.Option(
            "--prefetch",
            min=0,
            help="WAL files fetched ahead of recovery into the data directory's spool (0: none)",
        ),
    ] = prefetching.DEFAULT_AHEAD,
    segsize: SegSizeOpt = DEFAULT_SEGMENT_SIZE >> 20,
) -> None:
    """Write a data directory that recovers to the target and promotes when PostgreSQL starts on it; refuses a
    target outside the recoverable window, printing the window. The first --prefetch WAL files are fetched
    while the base backup is extracted, and restore_command keeps that many ahead of recovery."""
    target = _target(target_time, target_lsn, target_name, latest)
    if timeline != "latest":
        if not timeline.isdigit() or int(timeline) < 1:
            raise fail(f"--target-timeline {timeline!r}: expected 'latest' or a timeline number", BAD_INPUT)
        target = replace(target, timeline=int(timeline))
    if archive_mode not in ("preserve", "off"):
        raise fail(f"--archive-mode {archive_mode!r}: expected 'preserve' or 'off'", BAD_INPUT)
    if not repository.repo:
        raise fail("pg restore needs --repo: the restore_command it writes names the repository", BAD_INPUT)
    stashplan = shlex.split(command) if command else [sys.executable, "-m", "stashplan"]
    password_file = str(repository.password_file.resolve()) if repository.password_file else None
    fetch = restore_command(
        stashplan, repository.repo, password_file, look_ahead=prefetch, segment_size=segsize << 20
    )
    with repository.open_native() as repo:
        done = run(
            lambda: restoring.restore(
                repo,
                target,
                pgdata,
                fetch,
                segment_size=segsize << 20,
                backup=backup,
                archive_off=archive_mode == "off",
                prefetch=prefetch,
                follow=True,
            )
        )
    shown = [line for line in done.settings[1:] if not line.startswith(("restore_command", "recovery_end"))]
    typer.echo(
        f"restored base backup {done.backup.snapshot_id[:8]} into {pgdata}; window {describe(done.window)}\n"
        f"start PostgreSQL on it to recover ({'; '.join(shown)})"
        + ("" if password_file else "; its environment needs STASHPLAN_PASSWORD for restore_command")
    )


@app.command("wal-verify")
@repository_command()
def wal_verify(
    repository: RepositoryArgs, segsize: SegSizeOpt = DEFAULT_SEGMENT_SIZE >> 20, json_out: JsonOpt = False
) -> None:
    """The recoverable window per timeline, each timeline's history, every gap in the archive (per timeline),
    missing or contradicting history files, and base backups whose WAL is incomplete. Exit 1 when a gap or a
    history problem is found or nothing is recoverable."""
    with repository.open_native() as repo:
        inv = run(lambda: take_inventory(repo, segsize << 20))
    gap_lines = [g.describe(segsize << 20) for g in inv.gaps]
    usable = {b.snapshot_id for w in inv.windows for b in w.backups}
    unusable = [b.snapshot_id for b in inv.backups if b.snapshot_id not in usable]
    if json_out:
        doc = {
            "windows": [_window_json(w) for w in inv.windows],
            "gaps": gap_lines,
            "base_backups": [_backup_json(b) for b in inv.backups],
            "unusable_base_backups": unusable,
            "incomplete_base_backups": list(inv.incomplete),
            "segments": {f"{tl:08X}": len(s) for tl, s in sorted(inv.archive.segments.items())},
            "timelines": {str(tl): describe_chain(chain(tl, inv.histories)) for tl in sorted(inv.histories)},
            "history_problems": list(inv.chain_problems),
            "other_files": list(inv.archive.others),
        }
        typer.echo(json.dumps(doc))
    else:
        counts = (
            ", ".join(f"timeline {tl}: {len(s)}" for tl, s in sorted(inv.archive.segments.items())) or "none"
        )
        typer.echo(f"base backups: {len(inv.backups)}; WAL segments archived: {counts}")
        for line in restoring.describe_backups(inv.backups):
            typer.echo(f"  {line}")
        for w in inv.windows:
            typer.echo(f"recoverable: {describe(w)}")
        if not inv.windows:
            typer.echo("recoverable: nothing (no base backup with all the WAL it needs)")
        for tl in sorted(inv.histories):
            typer.echo(f"timeline {tl}: history {describe_chain(chain(tl, inv.histories))}")
        for line in inv.chain_problems:
            typer.echo(f"history: {line}")
        for line in gap_lines:
            typer.echo(f"gap: {line}")
        for sid in unusable:
            typer.echo(f"base backup {sid[:8]}: WAL it needs to become consistent is missing")
        for sid in inv.incomplete:
            typer.echo(f"base backup {sid[:8]}: its stop was never recorded; not usable")
    if gap_lines or inv.chain_problems or not inv.windows:
        raise typer.Exit(1)


@app.command("forget")
@repository_command(lock=True)
def forget_cmd(
    repository: RepositoryArgs,
    keep_last: Annotated[int, typer.Option("--keep-last")] = 0,
    keep_hourly: Annotated[int, typer.Option("--keep-hourly")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily")] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly")] = 0,
    keep_yearly: Annotated[int, typer.Option("--keep-yearly")] = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be removed")] = False,
    segsize: SegSizeOpt = DEFAULT_SEGMENT_SIZE >> 20,
    json_out: JsonOpt = False,
) -> None:
    """Forget base backups by the policy (per host; none without a --keep option), then delete the archived
    WAL no kept base backup needs (history files stay). `repo prune` afterwards frees the base backups' data."""
    policy = RetentionPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)
    with repository.open_native() as repo:
        done = run(lambda: forgetting.forget(repo, policy, dry_run=dry_run, segment_size=segsize << 20))
    if json_out:
        doc = {
            "kept": [_backup_json(b) for b in done.kept],
            "removed": [_backup_json(b) for b in done.removed],
            "wal_deleted": list(done.wal),
        }
        typer.echo(json.dumps(doc))
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"base backups: keep {len(done.kept)}, {verb} {len(done.removed)}")
    for line in restoring.describe_backups(done.removed):
        typer.echo(f"  {line}")
    span = f" ({done.wal[0]} .. {done.wal[-1]})" if done.wal else ""
    typer.echo(f"WAL files: {verb} {len(done.wal)}{span}")


def _lsn_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _window_json(w: Window) -> dict[str, object]:
    return {
        "timeline": w.timeline,
        "start_lsn": format_lsn(w.start_lsn),
        "end_lsn": format_lsn(w.end_lsn),
        "start_time": _lsn_time(w.start_time),
        "end_time": _lsn_time(w.end_time),
        "base_backups": [b.snapshot_id for b in w.backups],
        "history": w.history,
    }


def _backup_json(b: BaseBackup) -> dict[str, object]:
    return {
        "id": b.snapshot_id,
        "timeline": b.timeline,
        "start_lsn": format_lsn(b.start_lsn),
        "stop_lsn": format_lsn(b.stop_lsn),
        "start_time": _lsn_time(b.start_time),
        "stop_time": _lsn_time(b.stop_time),
    }
