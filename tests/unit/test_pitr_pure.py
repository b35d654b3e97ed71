"""The pure parts of point-in-time recovery: WAL names and LSNs, the recoverable window and its gaps, which base
backup a target needs, the recovery settings, and members picked out of a passing tar stream."""

from __future__ import annotations

import io
import shlex
import tarfile
from datetime import UTC, datetime, timedelta

import pytest

from stashplan.pitr.labels import BackupStart, backup_tags, from_tags, parse_backup_label
from stashplan.pitr.recovery_conf import recovery_settings, restore_command
from stashplan.pitr.tarscan import TarScanner
from stashplan.pitr.timelines import parse_history, problems
from stashplan.pitr.walkeep import droppable, horizons
from stashplan.pitr.walnames import WalKind, parse_lsn, parse_wal_name, segment_name, segment_number
from stashplan.pitr.window import BaseBackup, OutsideWindow, Target, TargetKind, choose, gaps, windows

MB16 = 16 * 1024 * 1024
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_segment_names_follow_postgresql() -> None:
    assert segment_name(1, 0x1FF) == "0000000100000001000000FF"
    assert segment_number("0000000100000001000000FF") == 0x1FF
    assert segment_name(2, 3, 64 * 1024 * 1024) == "000000020000000000000003"
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert parse_wal_name("00000002.history").kind is WalKind.HISTORY
    backup = parse_wal_name("000000010000000000000002.00000028.backup")
    assert (backup.kind, backup.timeline, backup.object_name) == (
        WalKind.BACKUP, 1, "wal/00000001/000000010000000000000002.00000028.backup",
    )  # fmt: skip
    with pytest.raises(ValueError, match="WAL file name"):
        parse_wal_name("../000000010000000000000002")


def _backup(sid: str, start_seg: int, minutes: int) -> BaseBackup:
    return BaseBackup(
        sid, 1, start_seg * MB16 + 0x28, start_seg * MB16 + 0x100, T0, T0 + timedelta(minutes=minutes)
    )


def test_a_gap_splits_the_window_and_a_target_past_it_is_refused() -> None:
    backups = [_backup("aaaa", 2, 1), _backup("bbbb", 7, 10)]
    segments = {1: {2, 3, 4, 7, 8}}
    found = windows(backups, segments)
    assert [(w.start_lsn, w.end_lsn, [b.snapshot_id for b in w.backups]) for w in found] == [
        (2 * MB16 + 0x100, 5 * MB16, ["aaaa"]),
        (7 * MB16 + 0x100, 9 * MB16, ["bbbb"]),
    ]
    assert [(g.first, g.last) for g in gaps(backups, segments)] == [(5, 6)]
    assert choose(found, Target(TargetKind.LSN, lsn=4 * MB16))[0].snapshot_id == "aaaa"
    assert choose(found, Target(TargetKind.LATEST))[0].snapshot_id == "bbbb"
    with pytest.raises(
        OutsideWindow, match=r"LSN 0/5800000 is outside the recoverable window: timeline 1: 0/2000100"
    ):
        choose(found, Target(TargetKind.LSN, lsn=5 * MB16 + 0x800000))


def test_a_base_backup_whose_wal_is_incomplete_is_in_no_window() -> None:
    backup = BaseBackup("cccc", 1, 2 * MB16, 4 * MB16 + 8, T0, T0)
    assert windows([backup], {1: {2, 3}}) == []
    assert [(g.first, g.last) for g in gaps([backup], {1: {3}})] == [(2, 2)]


def test_the_tags_carry_what_a_base_backup_needs() -> None:
    start = parse_backup_label(
        "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIME: 2026-12-06 02:52:50 UTC\n"
        "START TIMELINE: 1\n"
    )
    assert start == BackupStart(0x2000028, 1, datetime(2026, 12, 6, 2, 52, 50, tzinfo=UTC))
    found = from_tags("id", backup_tags(start, 0x2000100), T0)
    assert found is not None and (found.start_lsn, found.stop_lsn, found.stop_time) == (
        0x2000028,
        0x2000100,
        T0,
    )
    assert from_tags("id", ["pg-basebackup"], T0) is None


def test_recovery_settings_quote_the_command_and_promote() -> None:
    command = restore_command(["/usr/bin/python3", "-m", "stashplan"], "local:/srv/it's here", None)
    lines = recovery_settings(command, Target(TargetKind.TIME, time=T0))
    # the shell quoting of the path, then every single quote doubled for postgresql.conf
    expected = "restore_command = '/usr/bin/python3 -m stashplan pg wal-fetch -r ''local:/srv/it''\"''\"''s here''"
    assert lines[1].startswith(expected + " --not-found-exit 81 %f %p; ")
    shell = lines[1].removeprefix("restore_command = '").removesuffix("'").replace("''", "'")
    assert shlex.split(shell.split(";")[0])[6] == "local:/srv/it's here"
    # only wal-fetch's own "not found" (81) reaches PostgreSQL as 1; an interpreter failing to start is 126
    assert shell.endswith("; case $? in 0) exit 0;; 81) exit 1;; esac; exit 126")
    assert "recovery_target_time = '2026-12-01 10:00:00.000000+00'" in lines
    assert "recovery_target_action = 'promote'" in lines


def test_members_are_picked_out_of_a_passing_tar_stream() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in (
            ("backup_label", b"label"),
            ("base/1/big", b"x" * 100_000),
            ("backup_manifest", b"{}"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    scanner = TarScanner(io.BytesIO(raw.getvalue()), ("backup_label", "backup_manifest"))
    out = bytearray()
    buffer = bytearray(777)  # odd reads: headers and members split across them
    while n := scanner.readinto(buffer):
        out += buffer[:n]
    assert bytes(out) == raw.getvalue()
    assert scanner.members == {"backup_label": b"label", "backup_manifest": b"{}"} and scanner.finished


HISTORY_2 = "1\t0/5000100\tbefore 2026-12-01 10:30:00+00\n"


def test_a_timeline_reaches_back_through_its_history_to_a_base_backup_of_its_parent() -> None:
    histories = {2: parse_history(HISTORY_2)}
    backup = _backup("aaaa", 2, 1)
    segments = {1: {2, 3, 4, 5, 6, 7}, 2: {5, 6, 7}}
    found = windows([backup], segments, MB16, histories)
    assert [(w.timeline, w.end_lsn, w.history) for w in found] == [
        (1, 8 * MB16, ""),
        (2, 8 * MB16, "1 -> 2 at 0/5000100"),
    ]
    assert choose(found, Target(TargetKind.LATEST))[1].timeline == 2  # the newest timeline by default
    assert choose(found, Target(TargetKind.LATEST, timeline=1))[1].timeline == 1
    assert gaps([backup], segments, MB16, histories) == []
    assert problems(histories, {1, 2}) == []


def test_gaps_are_named_by_the_timeline_they_are_read_from_and_a_missing_history_is_a_problem() -> None:
    histories = {2: parse_history(HISTORY_2)}
    backup = _backup("aaaa", 2, 1)
    # timeline 1 lost segment 3 (needed by both histories); timeline 2 lost 6; timeline 1's own 6 is no help
    segments = {1: {2, 4, 5, 6}, 2: {5, 7}}
    assert [(g.timeline, g.first, g.last) for g in gaps([backup], segments, MB16, histories)] == [
        (1, 3, 3),
        (2, 6, 6),
    ]
    # the gap at 3 ends timeline 1's window before timeline 2 begins: timeline 2 has none
    assert [(w.timeline, w.end_lsn) for w in windows([backup], segments, MB16, histories)] == [(1, 3 * MB16)]
    assert problems({}, {1, 2}) == [
        "timeline 2: 00000002.history is not archived; recovery cannot follow it from its parent"
    ]
    three = parse_history("1\t0/5000100\tx\n2\t0/9000000\ty\n")
    assert problems({3: three}, {1, 3}) == ["timeline 3: its ancestor 2's 00000002.history is missing"]
    assert problems({2: parse_history("1\t0/6000000\tz\n"), 3: three}, {1, 3}) == [
        "timeline 3: 00000003.history disagrees with 00000002.history about timeline 2's ancestors"
    ]


def test_a_base_backup_taken_on_the_parent_after_the_branch_is_not_on_the_child_timeline() -> None:
    histories = {2: parse_history(HISTORY_2)}
    late = _backup("late", 6, 30)  # timeline 1, stopped after timeline 2 branched off at 0/5000100
    found = windows([late], {1: {6, 7}, 2: {5, 6, 7}}, MB16, histories)
    assert [(w.timeline, [b.snapshot_id for b in w.backups]) for w in found] == [(1, ["late"])]


def test_recovery_follows_the_chosen_timeline() -> None:
    lines = recovery_settings("cmd %f %p", Target(TargetKind.LATEST), 2)
    assert "recovery_target_timeline = '2'" in lines
    assert "recovery_target_timeline = 'current'" in recovery_settings("cmd %f %p", Target(TargetKind.LATEST))
    assert "archive_mode = 'off'" in recovery_settings("c", Target(TargetKind.LATEST), archive_off=True)


def test_wal_below_the_oldest_kept_base_backup_on_its_history_can_go_and_history_files_stay() -> None:
    histories = {2: parse_history(HISTORY_2)}  # timeline 2 branched off timeline 1 in segment 5
    kept = [_backup("b1", 3, 1)]  # on timeline 1, before the branch: timeline 2's history holds it
    first = horizons(kept, {1, 2}, histories, MB16)
    assert first == {1: 3, 2: 3}
    names = [
        "000000010000000000000001", "000000010000000000000002", "000000010000000000000002.00000028.backup",
        "000000010000000000000003", "000000010000000000000006", "000000020000000000000005",
        "00000002.history", "000000010000000000000002.partial",
    ]  # fmt: skip
    assert droppable(names, first, MB16) == [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000010000000000000002.00000028.backup",
        "000000010000000000000002.partial",
    ]
    # the only kept base backup is on timeline 2: timeline 1 keeps from where that backup starts
    on_two = BaseBackup("b2", 2, 7 * MB16, 7 * MB16 + 0x100, T0, T0)
    assert horizons([on_two], {1, 2}, histories, MB16) == {1: 7, 2: 7}
    assert horizons([], {1, 2}, histories, MB16) == {} and droppable(names, {}, MB16) == []
