"""Logging setup: readable lines on a terminal, one JSON object per line otherwise (pods, CI)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any


def json_line(level: str, logger: str, msg: str, *, created: float | None = None, **fields: Any) -> str:
    """One JSON log line, the one shape of every structured line stashplan writes (logs and the loop's reports)."""
    when = datetime.now(UTC) if created is None else datetime.fromtimestamp(created, UTC)
    return json.dumps({"time": when.isoformat(timespec="milliseconds"), "level": level, "logger": logger,
                       "msg": msg, **fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {"exception": self.formatException(record.exc_info)} if record.exc_info else {}
        return json_line(record.levelname.lower(), record.name, record.getMessage(), created=record.created, **fields)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (not the stream it was created with, which a
    test runner may have closed since)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging(level: int, *, structured: bool) -> None:
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if structured else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("stashplan").setLevel(level)
