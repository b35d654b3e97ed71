"""`stashplan transfer backup|restore|basebackup|pitr-restore`: the commands a backup or restore Job's container runs;
`wal-receive`: what a BackupConfiguration's WAL receiver Deployment runs.

Exit codes: 0 the session Succeeded (wal-receive: stopped by SIGTERM), 1 it Failed (status recorded; wal-receive:
pg_receivewal ended), 2 its inputs could not be read.
Registered by the root CLI as `app.add_typer(transfer_cli.app, name="transfer")`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated

import typer

from stashplan.cluster.base import Cluster
from stashplan.cluster.factory import connect
from stashplan.errors import StashplanError
from stashplan.exits import BAD_INPUT, fail
from stashplan.pitr.receive import check_slot
from stashplan.transfer.context import ContextError, pod_inputs
from stashplan.transfer.pg_restore_cli import pg_restore_command
from stashplan.transfer.physical import PitrOptions
from stashplan.transfer.priority import Priority
from stashplan.transfer.run import TransferOptions, TransferResult, backup, restore
from stashplan.transfer.wal_receive import ReceiveOptions, receive

app = typer.Typer(
    help="Run a BackupSession's or RestoreSession's data transfer (inside its Job).", no_args_is_help=True
)

Namespace = Annotated[str, typer.Option("--namespace", help="Namespace of the session.")]
Database = Annotated[str, typer.Option("--database", help="postgres | mysql | mariadb | redis | sqlite")]
Args = Annotated[str, typer.Option("--args", help="Extra arguments for the dump/restore command.")]
WaitTimeout = Annotated[str, typer.Option("--wait-timeout", help="Seconds to wait for the database.")]
Hostname = Annotated[str, typer.Option("--hostname", help="Host name recorded in the snapshot.")]
Pushgateway = Annotated[str, typer.Option("--pushgateway-url", help="Prometheus Pushgateway URL.")]
ProgressInterval = Annotated[
    float, typer.Option("--progress-interval", help="Seconds between progress lines in the Job log.")
]


def _seconds(value: str) -> float:
    try:
        return float(value) if value.strip() else 300.0
    except ValueError:
        raise typer.BadParameter(f"--wait-timeout must be a number of seconds, not {value!r}") from None


def _flag(param: str, value: str) -> bool:
    if value.strip().lower() not in ("true", "false", ""):
        raise typer.BadParameter(f"Task param {param} must be \"true\" or \"false\", not {value!r}")
    return value.strip().lower() != "false"


def _finish(kind: str, name: str, result: TransferResult) -> None:
    if result.ok:
        snap = f" snapshot {result.host.snapshot.short_id}" if result.host.snapshot else ""
        typer.echo(f"{kind} {name}: Succeeded{snap}")
        return
    typer.echo(f"{kind} {name}: Failed: {result.error or 'see status conditions'}", err=True)
    raise typer.Exit(1)


def _fail_input(exc: StashplanError) -> None:
    raise fail(exc, BAD_INPUT)


def _pushgateway(url: str) -> str:
    """The flag, or PROMETHEUS_PUSHGATEWAY_URL when the Function passed it empty (`${VAR:=}`)."""
    return url or os.environ.get("PROMETHEUS_PUSHGATEWAY_URL", "")


def _priority() -> Priority:
    """runtimeSettings.container nice/ionice, which the Job passes as NICE_ADJUSTMENT, IONICE_CLASS(_DATA)."""
    try:
        return Priority.from_env(os.environ)
    except StashplanError as exc:
        _fail_input(exc)
        raise


def _transfer(
    kind: str,
    flag: str,
    name: str,
    namespace: str,
    run: Callable[[Cluster, str, str, TransferOptions], TransferResult],
    opts: TransferOptions,
) -> None:
    """Run one session's transfer against the cluster the environment names; exit 0, 1 or 2."""
    if not name:
        _fail_input(StashplanError(f"{flag} is required"))
    try:
        cluster = connect()
        try:
            result = run(cluster, namespace or "default", name, opts)
        finally:
            cluster.close()
    except (StashplanError, ValueError) as exc:
        _fail_input(StashplanError(str(exc)))
        return
    _finish(kind, name, result)


@app.command("backup")
def backup_command(
    backupsession: Annotated[str, typer.Option("--backupsession", help="BackupSession name.")],
    database: Database,
    namespace: Namespace = "default",
    backup_cmd: Annotated[str, typer.Option("--backup-cmd", help="Dump command, e.g. pg_dump.")] = "",
    args: Args = "",
    multi_dump_args: Annotated[
        str,
        typer.Option(
            "--multi-dump-args",
            help="MySQL/MariaDB: args of several dumps, each part starting with $args=; one snapshot.",
        ),
    ] = "",
    wait_timeout: WaitTimeout = "300",
    hostname: Hostname = "host-0",
    pushgateway_url: Pushgateway = "",
    progress_interval: ProgressInterval = 30.0,
) -> None:
    """Dump the session's database into its repository, then record status, retention and metrics."""
    opts = TransferOptions(
        database=database,
        backup_cmd=backup_cmd,
        args=args,
        multi_dump_args=multi_dump_args,
        wait_timeout=_seconds(wait_timeout),
        hostname=hostname or "host-0",
        pushgateway_url=_pushgateway(pushgateway_url),
        progress_every=progress_interval,
        priority=_priority(),
        given=pod_inputs(os.environ),
    )
    _transfer("BackupSession", "--backupsession", backupsession, namespace, backup, opts)


@app.command("restore")
def restore_command(
    restoresession: Annotated[str, typer.Option("--restoresession", help="RestoreSession name.")],
    database: Database,
    namespace: Namespace = "default",
    args: Args = "",
    wait_timeout: WaitTimeout = "300",
    hostname: Hostname = "host-0",
    source_hostname: Annotated[
        str, typer.Option("--source-hostname", help="Host whose snapshot to use.")
    ] = "",
    snapshot: Annotated[
        str, typer.Option("--snapshot", help="Snapshot id(s), comma-separated, or latest.")
    ] = "",
    pushgateway_url: Pushgateway = "",
    progress_interval: ProgressInterval = 30.0,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help=(
        "PostgreSQL (one database): restore over this many connections, like pg_restore -j; "
        "1 restores in one transaction. MySQL/MariaDB (one database): a table per connection where the dump "
        "marks its tables."))] = 1,
) -> None:
    """Stream the chosen snapshot from the repository into the session's target database."""
    opts = TransferOptions(
        database=database,
        args=args,
        wait_timeout=_seconds(wait_timeout),
        hostname=hostname or "host-0",
        source_hostname=source_hostname,
        snapshot=snapshot,
        pushgateway_url=_pushgateway(pushgateway_url),
        progress_every=progress_interval,
        priority=_priority(),
        given=pod_inputs(os.environ),
        jobs=jobs,
    )
    _transfer("RestoreSession", "--restoresession", restoresession, namespace, restore, opts)


@app.command("basebackup")
def basebackup_command(
    backupsession: Annotated[str, typer.Option("--backupsession", help="BackupSession name.")],
    namespace: Namespace = "default",
    wait_timeout: WaitTimeout = "300",
    hostname: Hostname = "host-0",
    pushgateway_url: Pushgateway = "",
    progress_interval: ProgressInterval = 30.0,
) -> None:
    """PostgreSQL: stream a base backup (pg_basebackup) of the session's server into its repository, then
    record status, retention and metrics as for a dump (postgres-basebackup-<version>)."""
    opts = TransferOptions(
        database="postgres",
        wait_timeout=_seconds(wait_timeout),
        hostname=hostname or "host-0",
        pushgateway_url=_pushgateway(pushgateway_url),
        progress_every=progress_interval,
        priority=_priority(),
        given=pod_inputs(os.environ),
        basebackup=True,
    )
    _transfer("BackupSession", "--backupsession", backupsession, namespace, backup, opts)


@app.command("pitr-restore")
def pitr_restore_command(
    restoresession: Annotated[str, typer.Option("--restoresession", help="RestoreSession name.")],
    pgdata: Annotated[str, typer.Option("--pgdata", help="The data directory to write (new or empty).")],
    namespace: Namespace = "default",
    hostname: Hostname = "host-0",
    stashplan_command: Annotated[
        str, typer.Option("--stashplan-command", help="How the server runs stashplan in restore_command.")
    ] = "",
    password_file: Annotated[
        str, typer.Option("--password-file", help="restore_command reads the repository password from it.")
    ] = "",
    pushgateway_url: Pushgateway = "",
    recover: Annotated[
        str, typer.Option("--recover", help="true: run the recovery here before Succeeded; false: directory only.")
    ] = "true",
    pg_version: Annotated[str, typer.Option("--pg-version", help="The server major version that recovers.")] = "",
) -> None:
    """PostgreSQL: write a data directory from the newest base backup before the RestoreSession's spec.pitr
    target (restore_command fetching WAL from the repository) and recover it to the target with PostgreSQL
    `--pg-version` (unless --recover=false: it then recovers when PostgreSQL starts on it)."""
    opts = TransferOptions(
        database="postgres",
        hostname=hostname or "host-0",
        pushgateway_url=_pushgateway(pushgateway_url),
        priority=_priority(),
        given=pod_inputs(os.environ),
        pitr=PitrOptions(pgdata=pgdata, stashplan_command=stashplan_command, password_file=password_file,
                         recover=_flag("recover", recover), pg_version=pg_version),
    )
    _transfer("RestoreSession", "--restoresession", restoresession, namespace, restore, opts)


@app.command("wal-receive")
def wal_receive_command(
    backupconfiguration: Annotated[str, typer.Option("--backupconfiguration", help="BackupConfiguration name.")],
    namespace: Namespace = "default",
    slot: Annotated[str, typer.Option("--slot", help="Physical replication slot (created on first use).")] = "",
    interval: Annotated[
        float, typer.Option("--partial-interval", help="Seconds between pushes of the partial segment.")
    ] = 5.0,
    directory: Annotated[
        str, typer.Option("--directory", help="Where pg_receivewal writes (default: under the temporary directory).")
    ] = "",
    pg_receivewal: Annotated[str, typer.Option("--pg-receivewal", help="The pg_receivewal binary.")] = "pg_receivewal",
    psql: Annotated[str, typer.Option("--psql", help="The psql binary (the slot's lag).")] = "psql",
    pushgateway_url: Pushgateway = "",
    deployment: Annotated[str, typer.Option(
        "--deployment", help="The Deployment running this receiver: when it is gone at SIGTERM (or runs another "
        "slot), the slot is dropped.")] = "",
) -> None:
    """PostgreSQL: stream WAL over a replication slot into the BackupConfiguration's Repository (Task param
    walArchive=receive), reading its AppBinding, Secrets and Repository as its backup Jobs do; until SIGTERM."""
    if not backupconfiguration:
        _fail_input(StashplanError("--backupconfiguration is required"))
    if interval <= 0:
        _fail_input(StashplanError(f"--partial-interval {interval}: must be more than 0 seconds"))
    try:
        slot = check_slot(slot or f"stashplan_{backupconfiguration}")
    except ValueError as exc:
        _fail_input(StashplanError(str(exc)))
    opts = ReceiveOptions(slot, interval, directory, pg_receivewal, psql, _pushgateway(pushgateway_url), deployment)
    given = pod_inputs(os.environ)
    try:
        cluster = connect()
    except StashplanError as exc:
        _fail_input(exc)
        return
    try:
        receive(cluster, namespace or "default", backupconfiguration, opts, given)
    except ContextError as exc:
        _fail_input(exc)
    except (StashplanError, ValueError, OSError) as exc:
        typer.echo(f"BackupConfiguration {namespace}/{backupconfiguration}: wal-receive: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        cluster.close()


app.command("pg-restore")(pg_restore_command)


if __name__ == "__main__":
    app()
