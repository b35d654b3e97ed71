"""restic's locks while stashplan reads: refuse to start under an exclusive lock (restic forget/prune), and
hold a non-exclusive lock of our own, refreshed every 5 minutes, so that restic's prune waits for us.

A lock is a sealed JSON file `locks/<SHA-256>`: time, exclusive, hostname, username, pid, uid, gid;
restic treats one older than 30 minutes as stale. A storage that refuses the write (read-only
credentials) is read without a lock, with a warning.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from providers.storage import ObjectNotFound, Storage, StorageError
from stashplan.errors import RepositoryError
from stashplan.repository.formats import ResticLayout
from stashplan.repository.restic.crypto import ResticKey
from stashplan.repository.restic.files import load_object
from stashplan.repository.restic.snapshots import parse_time

STALE = timedelta(minutes=30)
REFRESH_SECONDS = 300.0
log = logging.getLogger(__name__)


def _go_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_lock(storage: Storage, key: ResticKey, layout: ResticLayout, *, exclusive: bool = False) -> str:
    """Store a lock of this process; returns its object name."""
    doc = {
        "time": _go_time(datetime.now(UTC)),
        "exclusive": exclusive,
        "hostname": socket.gethostname(),
        "username": getpass.getuser(),
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
    }
    sealed = key.seal(json.dumps(doc, separators=(",", ":")).encode())
    name = layout.locks + hashlib.sha256(sealed).hexdigest()
    storage.put(name, sealed)
    return name


def refuse_if_locked_exclusively(storage: Storage, key: ResticKey, layout: ResticLayout) -> None:
    """RepositoryError naming the holder when a fresh exclusive lock exists (restic forget/prune/check)."""
    now = datetime.now(UTC)
    for info in storage.list(layout.locks):
        try:
            lock = load_object(storage, key, info.name, "restic lock")
            at = parse_time(str(lock["time"]))
        except (RepositoryError, ObjectNotFound, KeyError, ValueError):
            continue  # removed meanwhile, or not readable: not a lock that can stop us
        if lock.get("exclusive") and now - at < STALE:
            raise RepositoryError(
                f"restic repository {storage.location} is locked exclusively by pid {lock.get('pid')} on "
                f"{lock.get('hostname')} since {at:%Y-%m-%d %H:%M:%S} UTC (restic prune, forget or check); "
                "try again when it has finished"
            )


@contextmanager
def shared_lock(storage: Storage, key: ResticKey, layout: ResticLayout) -> Iterator[None]:
    """Hold a non-exclusive restic lock for the duration (refreshed in the background)."""
    refuse_if_locked_exclusively(storage, key, layout)
    try:
        current = write_lock(storage, key, layout)
    except StorageError as exc:
        log.warning("reading %s without a restic lock: %s", storage.location, exc)
        yield
        return
    stop = threading.Event()

    def refresh() -> None:
        nonlocal current
        while not stop.wait(REFRESH_SECONDS):
            try:
                fresh = write_lock(storage, key, layout)
                storage.delete(current)
                current = fresh
            except (StorageError, ObjectNotFound) as exc:
                log.warning("refreshing the restic lock in %s failed: %s", storage.location, exc)

    thread = threading.Thread(target=refresh, name="stashplan-restic-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        try:
            storage.delete(current)
        except (StorageError, ObjectNotFound):
            log.warning("could not remove the restic lock %s from %s", current, storage.location)
