"""`stashplan pg restore`: the newest base backup from which the target is reachable, extracted into an empty
data directory as it streams out of the repository, with `recovery.signal` and the recovery settings
(`restore_command` calling `stashplan pg wal-fetch`, the target, promote) in `postgresql.auto.conf`.
Starting PostgreSQL on the directory then recovers to the target and promotes.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from stashplan.errors import StashplanError
from stashplan.pitr import prefetch as prefetching
from stashplan.pitr.inventory import Inventory, take_inventory
from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.prefetch import recovery_files
from stashplan.pitr.recover import Recovered
from stashplan.pitr.recovery_conf import AUTO_CONF, SIGNAL_FILE, recovery_settings
from stashplan.pitr.spool_names import SPOOL_DIR
from stashplan.pitr.untar import TarIntoDirectory
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn
from stashplan.pitr.window import OutsideWindow, Target, TargetKind, Window, choose
from stashplan.repository.repo import Repository


@dataclass(frozen=True)
class Restored:
    backup: BaseBackup
    window: Window
    settings: tuple[str, ...]  # the lines appended to postgresql.auto.conf
    recovered: Recovered | None = None  # when the recovery was run (and the settings removed again)


def prepare_pgdata(pgdata: Path) -> None:
    """Create `pgdata` (0700) or accept it empty; StashplanError for anything else."""
    if pgdata.exists():
        if not pgdata.is_dir():
            raise StashplanError(f"--pgdata {pgdata}: not a directory")
        if any(pgdata.iterdir()):
            raise StashplanError(
                f"--pgdata {pgdata}: not empty; a restore writes only into an empty directory"
            )
        pgdata.chmod(0o700)
    else:
        pgdata.mkdir(mode=0o700, parents=True)


def extract_snapshot(repo: Repository, snapshot_id: str, pgdata: Path) -> None:
    """Write the snapshot's tar into `pgdata` as it streams out (files and directories only, each checked to
    stay inside it); the stream checksum is verified at its end."""
    sink = TarIntoDirectory(pgdata)
    try:
        repo.restore(snapshot_id, sink)  # type: ignore[arg-type]  # a write-only sink, all restore uses
        sink.close()
    except (StashplanError, OSError) as exc:
        sink.abort()
        raise StashplanError(f"extracting base backup {snapshot_id[:8]} into {pgdata}: {exc}") from None


def restore(
    repo: Repository,
    target: Target,
    pgdata: Path,
    restore_command: str,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    backup: str | None = None,
    archive_off: bool = False,
    prefetch: int = 0,
    follow: bool = False,
) -> Restored:
    """Check the target against the recoverable window (OutsideWindow, printing it, when it cannot be
    reached), then write the data directory. `backup` limits the choice to one snapshot (id prefix). With
    `prefetch`, the first that many WAL files recovery reads are fetched into the spool meanwhile; with
    `follow`, by a background process (forked before the extraction: another CPU) that goes on keeping
    `prefetch` segments ahead of recovery once this returns. The restore_command must then read the spool
    (`recovery_conf.restore_command(look_ahead=...)`)."""
    inventory = take_inventory(repo, segment_size)
    chosen, window = choose(_limited(inventory, backup), target)
    prepare_pgdata(pgdata)
    path = recovery_files(
        chosen,
        window,
        inventory.histories,
        _whole(inventory),
        (1 << 62) if follow else prefetch,
        segment_size=segment_size,
        stop_lsn=target.lsn if target.kind is TargetKind.LSN else None,
    )
    spool = pgdata / SPOOL_DIR
    if prefetch:
        spool.mkdir(mode=0o700)
    follower = (
        prefetching.start_follower(repo, spool, path, prefetch, pgdata / SIGNAL_FILE) if follow else None
    )
    names = [] if follower is not None else path[:prefetch]  # no follower: fetched here, on a thread
    fetcher = threading.Thread(
        target=prefetching.prefetch, args=(repo, spool, names), name="stashplan-prefetch"
    )
    if names:
        fetcher.start()
    try:
        extract_snapshot(repo, chosen.snapshot_id, pgdata)
    except BaseException:
        if follower is not None:
            os.kill(follower, signal.SIGTERM)  # nothing to prefetch for
        raise
    finally:
        if names:
            fetcher.join()
    timeline = None if window.timeline == chosen.timeline else window.timeline
    settings = recovery_settings(
        restore_command, target, timeline, archive_off=archive_off, spooled=bool(prefetch)
    )
    (pgdata / SIGNAL_FILE).touch(mode=0o600)
    with (pgdata / AUTO_CONF).open("a") as conf:
        conf.write("\n" + "\n".join(settings) + "\n")
    return Restored(chosen, window, tuple(settings))


def _whole(inventory: Inventory) -> dict[int, set[int]]:
    """The segments archived whole, per timeline (a timeline's newest held only as `.partial` left out)."""
    tails = inventory.archive.partial_tails
    return {
        tli: {n for n in numbers if tails.get(tli) != n}
        for tli, numbers in inventory.archive.segments.items()
    }


def _limited(inventory: Inventory, backup: str | None) -> list[Window]:
    if backup is None:
        return list(inventory.windows)
    limited = [
        replace(w, backups=kept)
        for w in inventory.windows
        if (kept := tuple(b for b in w.backups if b.snapshot_id.startswith(backup.lower())))
    ]
    if not limited:
        raise OutsideWindow(
            f"--backup {backup}: no usable base backup (with all its WAL archived) has this id"
        )
    return limited


def describe_backups(backups: Sequence[BaseBackup]) -> list[str]:
    """One line per base backup: id, timeline, WAL range and times (`wal-verify`)."""
    return [
        f"{b.snapshot_id[:8]}  timeline {b.timeline}  {format_lsn(b.start_lsn)}..{format_lsn(b.stop_lsn)}  "
        f"{b.start_time:%Y-%m-%d %H:%M:%S}Z..{b.stop_time:%Y-%m-%d %H:%M:%S}Z"
        for b in backups
    ]
