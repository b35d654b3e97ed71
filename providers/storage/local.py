"""The `local` backend: objects are files under a root directory; writes are temp file + fsync + rename.

Files are created 0600 and directories 0700: a repository holds key files and encrypted data that no
other local user needs to read. `put_if_absent` links the finished temp file, which fails if the name
exists. Operating-system failures (disk full, permission denied) become one-line StorageErrors naming
the path and the cause; the temp file is removed. A listing is complete when every directory under the
prefix was read: one that cannot be read (or is a file) is such an error, never an empty listing.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from providers.storage.base import ObjectInfo, ObjectNotFound, Source, StorageError, check_name

TEMP_PREFIX = ".tmp-"
COPY_BLOCK = 4 << 20
FILE_MODE = 0o600
DIR_MODE = 0o700


class SourceError(Exception):
    """Carries an exception raised by a put's source stream, so it is not mistaken for a disk error."""


def _cause(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _make_dirs(path: Path) -> None:
    """`path` and its missing parents, each created 0700 (Path.mkdir gives parents the umask's mode)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():  # a file where a directory belongs
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory)) from None


def _copy(source: BinaryIO, fh: BinaryIO) -> None:
    while True:
        try:
            block = source.read(COPY_BLOCK)
        except Exception as exc:
            raise SourceError() from exc
        if not block:
            return
        fh.write(block)


class LocalStorage:
    """A directory (created on first write). Object "a/b/c" is the file `<root>/a/b/c`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()

    @property
    def location(self) -> str:
        return f"local:{self.root}"

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def _error(self, what: str, path: Path, exc: OSError) -> StorageError:
        return StorageError(f"{self.location}: cannot {what} {path}: {_cause(exc)}")

    def _write_temp(self, path: Path, source: Source) -> Path:
        """A finished, fsynced temp file beside `path` holding `source` (removed again on failure)."""
        _make_dirs(path.parent)
        tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with open(fd, "wb") as fh:
                if isinstance(source, bytes | bytearray | memoryview):
                    fh.write(source)
                else:
                    _copy(source, fh)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def _sync_dir(self, path: Path) -> None:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def put(self, name: str, source: Source) -> None:
        path = self._path(name)
        try:
            tmp = self._write_temp(path, source)
            try:
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._sync_dir(path)
        except SourceError as exc:
            raise exc.__cause__ from None  # type: ignore[misc]
        except OSError as exc:
            raise self._error("write", path, exc) from exc

    def put_if_absent(self, name: str, source: Source) -> bool:
        path = self._path(name)
        try:
            tmp = self._write_temp(path, source)
            try:
                os.link(tmp, path)  # atomic, and fails when `path` exists
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
            self._sync_dir(path)
            return True
        except SourceError as exc:
            raise exc.__cause__ from None  # type: ignore[misc]
        except OSError as exc:
            raise self._error("write", path, exc) from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        path = self._path(name)
        try:
            with open(path, "rb") as fh:
                if offset:
                    fh.seek(offset)
                return fh.read() if length is None else fh.read(length)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.location, name) from exc
        except OSError as exc:
            raise self._error("read", path, exc) from exc

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.location, name) from exc
        except OSError as exc:
            raise self._error("read", path, exc) from exc

    def _walk(self, prefix: str) -> Iterator[tuple[str, str]]:
        """(full path, file name) of every file under the directory holding `prefix`.

        A directory that does not exist holds nothing; one that cannot be read (or is not a directory)
        is a StorageError, never an empty listing. A directory removed while walking held nothing."""
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root

        def failed(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError) or Path(exc.filename or "") == base:
                raise self._error("list", Path(exc.filename or base), exc)

        try:
            os.stat(base)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error("list", base, exc) from exc
        for dirpath, _dirs, files in os.walk(base, onerror=failed):
            for fname in files:
                yield os.path.join(dirpath, fname), fname

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for full, fname in self._walk(prefix):
            if fname.startswith(TEMP_PREFIX):
                continue
            rel = os.path.relpath(full, self.root).replace(os.sep, "/")
            if rel.startswith(prefix):
                try:
                    size = os.stat(full).st_size
                except FileNotFoundError:
                    continue  # deleted since the directory was read
                except OSError as exc:
                    raise self._error("list", Path(full), exc) from exc
                yield ObjectInfo(rel, size)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.location, name) from exc
        except OSError as exc:
            raise self._error("delete", path, exc) from exc

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        cutoff = time.time() - older_than
        removed = []
        for full, fname in self._walk(""):
            if not fname.startswith(TEMP_PREFIX):
                continue
            try:
                if os.stat(full).st_mtime < cutoff:
                    os.unlink(full)
                    removed.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
            except FileNotFoundError:
                continue
        return removed
