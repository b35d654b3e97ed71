"""One log line per final phase a session reaches, with the reason, whoever wrote it (the loop or the Job)."""

from __future__ import annotations

from stashplan.listing import session_reason
from stashplan.phases import SETTLED

SESSION_KINDS = ("BackupSession", "RestoreSession")


class PhaseLog:
    """Remembers each session's last seen phase; `observe` returns a line for each that became final since.
    Sessions already final when first seen (before this loop started) are not reported again."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, str], str] = {}
        self._started = False

    def observe(self, sessions: list[dict]) -> list[str]:
        lines = []
        current: dict[tuple[str, str, str], str] = {}
        for s in sessions:
            meta = s.get("metadata") or {}
            key = (str(s.get("kind")), meta.get("namespace", ""), meta.get("name", ""))
            phase = (s.get("status") or {}).get("phase") or "Pending"
            current[key] = phase
            before = self._seen.get(key)
            if phase in SETTLED and phase != before and (self._started or before is not None):
                reason = session_reason(s)
                lines.append(f"{key[0]} {key[1]}/{key[2]} {phase}" + (f": {reason}" if reason else ""))
        self._seen = current
        self._started = True
        return lines
