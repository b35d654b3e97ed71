"""The `local` backend: objects are files under a root directory; writes are temp file + fsync + rename."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from providers.storage.base import ObjectInfo, ObjectNotFound, Source, StorageError, check_name

TEMP_PREFIX = ".tmp-"
COPY_BLOCK = 4 << 20


class LocalStorage:
    """A directory (created on first write). Object "a/b/c" is the file `<root>/a/b/c`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()

    @property
    def location(self) -> str:
        return f"local:{self.root}"

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def put(self, name: str, source: Source) -> None:
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            try:
                with open(tmp, "wb") as fh:
                    if isinstance(source, bytes | bytearray | memoryview):
                        fh.write(source)
                    else:
                        shutil.copyfileobj(source, fh, COPY_BLOCK)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except PermissionError as exc:
            raise StorageError(f"{self.location}: cannot write {name}: permission denied") from exc

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            with open(self._path(name), "rb") as fh:
                if offset:
                    fh.seek(offset)
                return fh.read() if length is None else fh.read(length)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.location, name) from exc

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self._path(name), "rb")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.location, name) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            for fname in files:
                if fname.startswith(TEMP_PREFIX):
                    continue
                full = os.path.join(dirpath, fname)
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                if rel.startswith(prefix):
                    try:
                        size = os.stat(full).st_size
                    except FileNotFoundError:
                        continue
                    yield ObjectInfo(rel, size)

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(self.location, name) from exc

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()
