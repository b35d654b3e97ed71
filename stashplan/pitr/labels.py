"""What a base backup records (pure): its start from `backup_label`, its WAL range from `backup_manifest`, and
the snapshot tags that carry both (`pg-basebackup`, `pg-timeline=`, `pg-start-lsn=`, `pg-stop-lsn=`,
`pg-start-time=`), read back into a `BaseBackup`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from stashplan.pitr.walnames import format_lsn, parse_lsn

BASEBACKUP_TAG = "pg-basebackup"
BASE_FILENAME = "base.tar"  # the snapshot's file name: pg_basebackup's tar of the main tablespace


@dataclass(frozen=True)
class BackupStart:
    """From `backup_label`: where WAL replay starts and when the backup began."""

    start_lsn: int
    timeline: int
    start_time: datetime


@dataclass(frozen=True)
class BaseBackup:
    """A base backup in the repository: consistent once WAL from `start_lsn` to `stop_lsn` on `timeline` is
    replayed. `stop_time` is when its stream ended (at or after the backup's stop, so a safe bound)."""

    snapshot_id: str
    timeline: int
    start_lsn: int
    stop_lsn: int
    start_time: datetime
    stop_time: datetime


def parse_backup_label(text: str) -> BackupStart:
    """The start of a backup from its `backup_label` file; ValueError naming the missing line."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            fields[name.strip()] = value.strip()
    try:
        lsn = parse_lsn(fields["START WAL LOCATION"].split()[0])
        timeline = int(fields["START TIMELINE"])
        started = datetime.strptime(fields["START TIME"].removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S")
    except KeyError as exc:
        raise ValueError(f"backup_label: line {exc.args[0]!r} is missing") from None
    tz = UTC if fields["START TIME"].endswith(" UTC") else None
    return BackupStart(lsn, timeline, started.replace(tzinfo=tz) if tz else started.astimezone(UTC))


def parse_wal_range(manifest: bytes) -> tuple[int, int, int]:
    """(timeline, start LSN, end LSN) from a `backup_manifest`'s `WAL-Ranges`; ValueError when it holds none
    or several (a backup taken on a standby across a timeline switch is not supported yet)."""
    try:
        ranges = json.loads(manifest)["WAL-Ranges"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"backup_manifest: no WAL-Ranges ({exc})") from None
    if len(ranges) != 1:
        raise ValueError(f"backup_manifest: expected one WAL range, found {len(ranges)}")
    r = ranges[0]
    return int(r["Timeline"]), parse_lsn(r["Start-LSN"]), parse_lsn(r["End-LSN"])


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_tags(start: BackupStart, stop_lsn: int) -> list[str]:
    """The tags a finished base backup's snapshot carries."""
    return [
        BASEBACKUP_TAG,
        f"pg-timeline={start.timeline}",
        f"pg-start-lsn={format_lsn(start.start_lsn)}",
        f"pg-stop-lsn={format_lsn(stop_lsn)}",
        f"pg-start-time={_ts(start.start_time)}",
    ]


def from_tags(snapshot_id: str, tags: Sequence[str], end_time: datetime) -> BaseBackup | None:
    """The base backup a snapshot's tags describe, or None when they do not (another snapshot, or a base
    backup whose stop was never recorded)."""
    if BASEBACKUP_TAG not in tags:
        return None
    values = dict(t.split("=", 1) for t in tags if "=" in t)
    try:
        return BaseBackup(
            snapshot_id=snapshot_id,
            timeline=int(values["pg-timeline"]),
            start_lsn=parse_lsn(values["pg-start-lsn"]),
            stop_lsn=parse_lsn(values["pg-stop-lsn"]),
            start_time=datetime.fromisoformat(values["pg-start-time"].replace("Z", "+00:00")),
            stop_time=end_time.astimezone(UTC),
        )
    except (KeyError, ValueError):
        return None
