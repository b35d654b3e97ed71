"""A base backup's tar written into a data directory as it streams out of the repository: a file-like sink
(`write`) that parses ustar headers and writes each member's bytes straight to its file, with no pipe, no
thread and no copy beyond the buffers the restore hands over (Python's tarfile reads a stream in 10 KiB
records: several times slower than the repository's restore).

Only what pg_basebackup's tar holds is written: regular files and directories, named inside the data
directory; anything else (a link, a device, a name with `..` or a leading `/`, pax or GNU extension
headers) is refused, naming the member. Files are created new (never through an existing name or link),
with the member's owner permissions only (as tarfile's `data` filter keeps them); owners and times are not
restored: the files belong to whoever restores. Each file is flushed to disk (fdatasync) by a background
thread once written, so the write-back overlaps the extraction and the server's start (which syncs the whole
data directory before recovery) finds nothing left to flush.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path, PurePosixPath

from stashplan.errors import StashplanError
from stashplan.pitr.tarscan import BLOCK, TarFormatError, size_field

_REGULAR = (b"0", b"\0")
_DIRECTORY = b"5"


class TarIntoDirectory:
    """Write-only sink: `write(data)` as often as the stream gives data, then `close()`, which refuses an
    archive that ended early (a member cut short, or no end-of-archive block)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._header = bytearray()
        self._fd = -1
        self._fd_was_open = False
        self._left = 0  # data bytes of the current member still to write
        self._pad = 0
        self._name = ""
        self._ended = False
        self.files = 0
        self.bytes = 0
        self._to_sync: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._sync_error: list[OSError] = []
        self._syncer = threading.Thread(target=self._sync, name="stashplan-untar-sync", daemon=True)
        self._syncer.start()

    def _sync(self) -> None:
        while (fd := self._to_sync.get()) is not None:
            try:
                os.fdatasync(fd)
            except OSError as exc:
                self._sync_error.append(exc)
            finally:
                os.close(fd)

    def _stop_syncing(self) -> None:
        if self._syncer.is_alive():
            self._to_sync.put(None)
            self._syncer.join()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        pos, size = 0, len(view)
        while pos < size:
            if self._left:
                take = min(self._left, size - pos)
                written = os.write(self._fd, view[pos : pos + take])
                self._left -= written
                pos += written
                if not self._left:
                    self._member_done()
            elif self._pad:
                take = min(self._pad, size - pos)
                self._pad -= take
                pos += take
            elif self._ended:
                pos = size  # after the end-of-archive blocks: padding
            else:
                take = min(BLOCK - len(self._header), size - pos)
                self._header += view[pos : pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    self._start_member(bytes(self._header))
                    self._header.clear()
        self.bytes += size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Wait until every file is on disk; StashplanError when the archive ended early or a flush failed."""
        self.abort()
        if self._fd_was_open:
            raise StashplanError(f"tar member {self._name!r} is cut short: the base backup's stream ended early")
        if not self._ended:
            raise StashplanError("the base backup's tar has no end-of-archive block: its stream ended early")
        if self._sync_error:
            raise StashplanError(f"flushing the data directory to disk: {self._sync_error[0]}")

    def abort(self) -> None:
        """Close what is open and stop the flushing thread (after a failure elsewhere: the caller reports it)."""
        self._fd_was_open = self._fd >= 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._stop_syncing()

    def _path(self, name: str) -> Path:
        parts = PurePosixPath(name).parts
        if not name or name.startswith("/") or ".." in parts:
            raise StashplanError(f"tar member {name!r} points outside the data directory")
        return self._root.joinpath(*parts)

    def _start_member(self, header: bytes) -> None:
        if not any(header):
            self._ended = True
            return
        if header[257:262] != b"ustar":
            raise StashplanError("the base backup is not a ustar tar stream (pg_basebackup -Ft writes ustar)")
        name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        name = f"{prefix}/{name}" if prefix else name
        kind = header[156:157]
        try:
            size = size_field(header[124:136])
            mode = int(header[100:108].rstrip(b"\0 ").lstrip(b" ") or b"0", 8) & 0o700
        except (TarFormatError, ValueError) as exc:
            raise StashplanError(f"tar member {name!r}: {exc}") from None
        self._name = name
        path = self._path(name.rstrip("/"))
        if kind == _DIRECTORY:
            if path != self._root:
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                path.mkdir(mode=mode | 0o700, exist_ok=True)
            self._pad = -size % BLOCK
            self._left = 0
            return
        if kind not in _REGULAR:
            raise StashplanError(
                f"tar member {name!r}: only files and directories are restored, not type {kind!r} (a tablespace "
                "link?)"
            )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        self._fd = os.open(path, flags, mode or 0o600)
        self.files += 1
        self._left = size
        self._pad = -size % BLOCK
        if not size:
            self._member_done()

    def _member_done(self) -> None:
        self._to_sync.put(self._fd)  # closed by the flushing thread
        self._fd = -1
