"""What the PostgreSQL point-in-time Tasks' Jobs run: `postgres-basebackup-<v>` streams a base backup into the
BackupConfiguration's Repository (status, retention and metrics then as for a dump), `postgres-pitr-restore-<v>`
writes a data directory and runs its recovery to the RestoreSession's `spec.pitr` target (`stashplan.pitr.recover`).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from providers.databases.base import Connection, DatabaseProvider, ProcessSpec
from providers.databases.postgres import PostgresProvider
from providers.storage import storage_from_repository
from stashplan.api.modes import PITR_MOUNT
from stashplan.errors import TransferError
from stashplan.pitr.basebackup import basebackup_argv, run_basebackup
from stashplan.pitr.prefetch import DEFAULT_AHEAD
from stashplan.pitr.recover import Recovered, RecoveryFailed, recover, server_bin
from stashplan.pitr.recovery_conf import restore_command
from stashplan.pitr.restore import Restored, restore
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, parse_lsn
from stashplan.pitr.window import Target, TargetKind, describe
from stashplan.repository import Repository, Snapshot
from stashplan.repository.opening import open_repository
from stashplan.transfer.context import SessionContext
from stashplan.transfer.post import invoker_ref, target_ref


@dataclass(frozen=True)
class PitrOptions:
    """The params of a `postgres-pitr-restore-<v>` Task: the data directory to write (new or empty, on the
    machine that runs the Job: this one in local mode, a claim's mount in a cluster), how the server will run
    stashplan in its restore_command, an optional file holding the repository password for it, and whether
    the Job runs the recovery itself with PostgreSQL `pg_version`'s server (else the directory is left to
    recover when a server starts on it)."""

    pgdata: str
    stashplan_command: str = ""
    password_file: str = ""
    segment_size: int = DEFAULT_SEGMENT_SIZE
    recover: bool = True
    pg_version: str = ""


def take_basebackup(
    provider: DatabaseProvider,
    conn: Connection,
    repo: Repository,
    *,
    hostname: str,
    source: str,
    session_name: str,
    ctx: SessionContext,
    deadline: float | None,
    progress: Callable[[int], None] | None,
) -> Snapshot:
    """One base backup of the AppBinding's server into `repo`, tagged like a dump of the session; the snapshot."""
    if not isinstance(provider, PostgresProvider):
        raise TransferError(f"a base backup is a PostgreSQL backup; the target is {provider.name}")
    if conn.database:
        raise TransferError(
            f"a base backup copies the whole server; the AppBinding's URL names database {conn.database!r} "
            "(drop it from the URL, or use postgres-backup-<version> for one database)"
        )
    argv = basebackup_argv("pg_basebackup", conn.host, conn.port or 5432, conn.username)
    _found, snap = run_basebackup(
        repo,
        ProcessSpec(argv, provider.client_env(conn), label="pg_basebackup"),
        hostname=hostname,
        source=source,
        deadline=deadline,
        extra_tags=(f"session={session_name}",),
        invoker=invoker_ref(ctx),
        target=target_ref(ctx),
        progress=progress,
    )
    return snap


def pitr_target(session: Mapping) -> Target:
    """The recovery target of a RestoreSession's `spec.pitr` (targetTime, targetLSN or targetName; none: all the
    archived WAL); TransferError naming the field for a bad value."""
    pitr = (session.get("spec") or {}).get("pitr") or {}
    given = [k for k in ("targetTime", "targetLSN", "targetName") if pitr.get(k)]
    if len(given) > 1:
        raise TransferError(f"spec.pitr: give one of targetTime, targetLSN, targetName, not {' and '.join(given)}")
    try:
        if pitr.get("targetTime"):
            when = datetime.fromisoformat(str(pitr["targetTime"]).replace("Z", "+00:00"))
            return Target(TargetKind.TIME, time=when if when.tzinfo else when.replace(tzinfo=UTC))
        if pitr.get("targetLSN"):
            return Target(TargetKind.LSN, lsn=parse_lsn(str(pitr["targetLSN"])))
    except ValueError as exc:
        raise TransferError(f"spec.pitr.{given[0]}: {exc}") from None
    if pitr.get("targetName"):
        return Target(TargetKind.NAME, name=str(pitr["targetName"]))
    return Target(TargetKind.LATEST)


def repository_url(repository: Mapping) -> str:
    """The `-r` URL of a Repository for the restore_command the data directory is given (local and s3)."""
    name = (repository.get("metadata") or {}).get("name", "?")
    backend = (repository.get("spec") or {}).get("backend") or {}
    if "local" in backend:
        local = backend["local"] or {}
        return "local:" + os.path.realpath(os.path.join(str(local.get("mountPath")), str(local.get("subPath") or "")))
    if "s3" in backend:
        s3 = backend["s3"] or {}
        endpoint = str(s3.get("endpoint") or "")
        endpoint = endpoint if "://" in endpoint else "https://" + endpoint
        return f"s3:{endpoint}/{s3.get('bucket')}" + (f"/{s3['prefix'].strip('/')}" if s3.get("prefix") else "")
    raise TransferError(
        f"Repository {name}: a PITR restore writes a restore_command naming the repository, which stashplan "
        f"does for local and s3 backends only, not {', '.join(sorted(backend)) or 'none'}"
    )


def restore_pitr(ctx: SessionContext, opts: PitrOptions, deadline: float | None = None) -> Restored:
    """Write `opts.pgdata` from the newest base backup the target is reachable from, with the recovery settings;
    OutsideWindow (naming the window) when the repository cannot reach the target. With `opts.recover`, then run
    the recovery (RecoveryFailed naming the cause and the window when it does not reach the target)."""
    if not opts.pgdata or not opts.pgdata.startswith("/"):
        raise TransferError(f"Task param pgdata must be an absolute directory, not {opts.pgdata!r}")
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not opts.pgdata.startswith(PITR_MOUNT + "/"):
        raise TransferError(  # a RestoreSession kubectl created: the directory would go with the pod
            f"Task param claimName: in a cluster a point-in-time restore writes into a PersistentVolumeClaim "
            f"(mounted at {PITR_MOUNT}), not {opts.pgdata} in the Job's own container, which goes with its pod"
        )
    pgdata = Path(opts.pgdata)
    target = pitr_target(ctx.session)
    bin_dir = server_bin(opts.pg_version) if opts.recover else None  # before anything is written
    stashplan = shlex.split(opts.stashplan_command) if opts.stashplan_command else [sys.executable, "-m", "stashplan"]
    fetch = restore_command(
        stashplan,
        repository_url(ctx.repository),
        opts.password_file or None,
        look_ahead=DEFAULT_AHEAD,
        segment_size=opts.segment_size,
    )
    storage = storage_from_repository(ctx.repository, ctx.storage_secret)
    repo = open_repository(storage, ctx.password)
    try:
        if not isinstance(repo, Repository):
            raise TransferError("a PITR restore needs a stashplan repository (base backups and WAL), not restic's")
        done = restore(repo, target, pgdata, fetch, segment_size=opts.segment_size, prefetch=DEFAULT_AHEAD)
    finally:
        repo.close()
    owner = _own_like_parent(pgdata, server=bin_dir is not None)
    if bin_dir is not None:
        recovered = recover(pgdata, target, describe(done.window), bin_dir=bin_dir, env=_server_env(ctx, opts),
                            owner=owner, settings=done.settings, deadline=deadline)
        return replace(done, recovered=recovered)
    return done


def summary(done: Restored) -> str:
    what = f"base backup {done.backup.snapshot_id[:8]}, window {describe(done.window)}"
    recovered: Recovered | None = done.recovered
    if recovered is None:
        return what + "; recovery runs when PostgreSQL starts on it"
    return what + f"; recovered and promoted in {recovered.seconds:.1f} s" + (
        f" ({recovered.stop})" if recovered.stop else " (every archived segment replayed)")


def _server_env(ctx: SessionContext, opts: PitrOptions) -> dict[str, str]:
    """The recovering server's environment, inherited by its restore_command: this process's, the repository
    password (unless a password file is given) and the storage Secret's credentials (AWS_* and the like)."""
    env = dict(os.environ)
    env.update({k: v for k, v in ctx.storage_secret.items() if re.fullmatch(r"[A-Z][A-Z0-9_]*", k)})
    env.pop("RESTIC_PASSWORD", None)
    if not opts.password_file:
        env["STASHPLAN_PASSWORD"] = ctx.password
    return env


SERVER_ACCOUNT = "postgres"  # whom the files go to, run as root, when root owns the directory pgdata is in


def _own_like_parent(pgdata: Path, *, server: bool) -> tuple[int, int] | None:
    """Run as root (local mode's loop, a pod without runAsUser), give the restored tree the owner of the directory
    it is in, so that the server's OS user (who owns that directory) can start on it; when root owns that
    directory too (a fresh claim's mount) and the recovery `server` is to run, the `postgres` account's, as
    PostgreSQL refuses to run as root. Otherwise the files are the Job's user's. The (uid, gid) the server
    runs as (None: this process's own)."""
    if os.geteuid() != 0:
        return None
    parent = pgdata.parent.stat()
    uid, gid = parent.st_uid, parent.st_gid
    if uid == 0:
        if not server:
            return None
        try:
            account = pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            raise RecoveryFailed(
                f"{pgdata.parent} belongs to root and PostgreSQL refuses to run as root; there is no "
                f"{SERVER_ACCOUNT} account: give the directory to the server's OS user, or run the Job as it"
            ) from None
        uid, gid = account.pw_uid, account.pw_gid
    for root, dirs, files in os.walk(pgdata):
        os.chown(root, uid, gid)
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
    return uid, gid
