"""`stashplan pg restore`: the newest base backup from which the target is reachable, extracted into an empty
data directory as it streams out of the repository, with `recovery.signal` and the recovery settings
(`restore_command` calling `stashplan pg wal-fetch`, the target, promote) in `postgresql.auto.conf`.
Starting PostgreSQL on the directory then recovers to the target and promotes.
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from stashplan.errors import StashplanError
from stashplan.pitr.inventory import Inventory, take_inventory
from stashplan.pitr.labels import BaseBackup
from stashplan.pitr.recovery_conf import AUTO_CONF, SIGNAL_FILE, recovery_settings
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn
from stashplan.pitr.window import OutsideWindow, Target, Window, choose
from stashplan.repository.repo import Repository


@dataclass(frozen=True)
class Restored:
    backup: BaseBackup
    window: Window
    settings: tuple[str, ...]  # the lines appended to postgresql.auto.conf


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


# Members are checked by `_checked`; on Pythons with extraction filters, say so (no DeprecationWarning).
_TRUSTED: dict[str, Any] = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


def _checked(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """`member` if it is a plain file or directory inside the data directory; owners are not restored (the
    files belong to whoever restores, as with tarfile's `data` filter, which Python 3.11.0-3.11.3 lack)."""
    parts = PurePosixPath(member.name).parts
    if member.name.startswith("/") or ".." in parts:
        raise StashplanError(f"tar member {member.name!r} points outside the data directory")
    if not (member.isreg() or member.isdir()):
        raise StashplanError(
            f"tar member {member.name!r}: only files and directories are restored (a tablespace link?)"
        )
    member.uid = member.gid = -1  # os.chown(path, -1, -1) changes nothing
    member.uname = member.gname = ""
    member.mode &= 0o700
    return member


def extract_snapshot(repo: Repository, snapshot_id: str, pgdata: Path) -> None:
    """Stream the snapshot's tar into `pgdata` (files and directories only, each checked to stay inside it);
    the stream checksum is verified at its end."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def extract() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            try:
                with tarfile.open(fileobj=pipe, mode="r|") as archive:
                    for member in archive:
                        archive.extract(_checked(member), pgdata, set_attrs=True, **_TRUSTED)
                while pipe.read(1024 * 1024):  # the tar's end padding, so the writer finishes its checks
                    pass
            except BaseException as exc:
                failure.append(exc)

    worker = threading.Thread(target=extract, name="stashplan-untar", daemon=True)
    worker.start()
    try:
        with os.fdopen(write_fd, "wb") as out:
            repo.restore(snapshot_id, out)
    except BrokenPipeError:
        pass  # the extractor stopped: its error is the one to report
    finally:
        worker.join()
    if failure:
        raise StashplanError(f"extracting base backup {snapshot_id[:8]} into {pgdata}: {failure[0]}")


def restore(
    repo: Repository,
    target: Target,
    pgdata: Path,
    restore_command: str,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    backup: str | None = None,
    archive_off: bool = False,
) -> Restored:
    """Check the target against the recoverable window (OutsideWindow, printing it, when it cannot be
    reached), then write the data directory. `backup` limits the choice to one snapshot (id prefix)."""
    inventory = take_inventory(repo, segment_size)
    chosen, window = choose(_limited(inventory, backup), target)
    prepare_pgdata(pgdata)
    extract_snapshot(repo, chosen.snapshot_id, pgdata)
    timeline = None if window.timeline == chosen.timeline else window.timeline
    settings = recovery_settings(restore_command, target, timeline, archive_off=archive_off)
    (pgdata / SIGNAL_FILE).touch(mode=0o600)
    with (pgdata / AUTO_CONF).open("a") as conf:
        conf.write("\n" + "\n".join(settings) + "\n")
    return Restored(chosen, window, tuple(settings))


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
