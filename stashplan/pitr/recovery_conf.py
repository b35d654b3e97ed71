"""The recovery settings a restore appends to `postgresql.auto.conf` (pure): `restore_command`, the recovery
target and `recovery_target_action = 'promote'`, quoted as postgresql.conf quotes strings.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import UTC

from stashplan.pitr.spool_names import NO_HISTORY, PENDING, SPOOL_DIR
from stashplan.pitr.walnames import DEFAULT_SEGMENT_SIZE, format_lsn
from stashplan.pitr.window import Target, TargetKind

SIGNAL_FILE = "recovery.signal"
AUTO_CONF = "postgresql.auto.conf"
NOT_FOUND_EXIT = 81  # wal-fetch's "not in the archive" inside restore_command (mapped to 1 there)
HEADER = "# Added by `stashplan pg restore`: recover from the repository's WAL archive, then promote."


def quote(value: str) -> str:
    """A postgresql.conf string literal: single quotes, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def restore_command(
    stashplan: Sequence[str],
    repository: str,
    password_file: str | None,
    *,
    look_ahead: int = 0,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> str:
    """`<stashplan> pg wal-fetch -r REPO --not-found-exit 81 [--password-file F] [--spool SPOOL --look-ahead N]
    %f %p` as one shell command line (its exit status checked: see below), `%` in it doubled (restore_command's escape); the password itself never appears (the
    server's environment holds STASHPLAN_PASSWORD, or the file names it). With `look_ahead`, files come from
    the prefetch spool in the data directory (`spool_serve.SPOOL_DIR`, relative: the command runs there): the
    shell links a spooled file that is not pending into place itself, and answers timeline 1's history file
    (there never is one), so that those calls start no interpreter."""
    argv = [*stashplan, "pg", "wal-fetch", "-r", repository, "--not-found-exit", str(NOT_FOUND_EXIT)]
    if password_file:
        argv += ["--password-file", password_file]
    if look_ahead:
        argv += ["--spool", SPOOL_DIR, "--look-ahead", str(look_ahead)]
    if segment_size != DEFAULT_SEGMENT_SIZE:
        argv += ["--wal-segsize", str(segment_size >> 20)]
    command = " ".join(shlex.quote(a).replace("%", "%%") for a in argv) + " %f %p"
    # Only wal-fetch's own "not in the archive" may end recovery (exit 1 to PostgreSQL): an interpreter that
    # fails to start also exits 1, and would otherwise promote the server early. Anything else stops it (126).
    checked = f"{command}; case $? in 0) exit 0;; {NOT_FOUND_EXIT}) exit 1;; esac; exit 126"
    if not look_ahead:
        return checked
    spooled = f"{SPOOL_DIR}/%f"
    return (
        f"case %f in {NO_HISTORY}) exit 1;; esac; "
        f"if [ -f {spooled} ] && [ ! -e {spooled}{PENDING} ] && ln -f {spooled} %p 2>/dev/null; then exit 0; fi; "
        f"{checked}"
    )


def spool_cleanup() -> str:
    """recovery_end_command: remove the prefetch spool once recovery has ended."""
    return f"rm -rf -- {shlex.quote(SPOOL_DIR)}"


def recovery_settings(
    command: str,
    target: Target,
    timeline: int | None = None,
    *,
    archive_off: bool = False,
    spooled: bool = False,
) -> list[str]:
    """The lines for postgresql.auto.conf. Recovery follows `timeline` (its history file is fetched through
    restore_command), or the base backup's own (`current`) when None. `--latest` sets no target: recovery
    replays every archived segment, and promotes when the next one is not found (the action is then moot)."""
    lines = [HEADER, f"restore_command = {quote(command)}"]
    if spooled:
        lines.append(f"recovery_end_command = {quote(spool_cleanup())}")
    if target.kind is TargetKind.TIME and target.time is not None:
        stamp = target.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        lines.append(f"recovery_target_time = {quote(stamp)}")
    elif target.kind is TargetKind.LSN and target.lsn is not None:
        lines.append(f"recovery_target_lsn = {quote(format_lsn(target.lsn))}")
    elif target.kind is TargetKind.NAME:
        lines.append(f"recovery_target_name = {quote(target.name)}")
    lines.append("recovery_target_action = 'promote'")
    lines.append(f"recovery_target_timeline = {quote('current' if timeline is None else str(timeline))}")
    if archive_off:  # a restored copy (a drill) must not archive its new timeline into the repository
        lines.append("archive_mode = 'off'")
    return lines
