"""The storage interface every backend implements: opaque named objects, no knowledge of snapshots.

Rules (the contract suite in tests/contract/test_storage_contract.py checks them on every backend):
- Names are relative, "/"-separated keys (e.g. "data/ab/abcd..."); a backend maps them to its own layout.
- `put` is atomic: a reader sees either the whole new object or nothing (or the old object). A source
  may be bytes or a binary stream read to EOF; a stream source is not rewound by the backend.
- `get` returns the object's bytes, or the `length` bytes at `offset`; `open` streams them.
- A missing object raises `ObjectNotFound` (also through wrappers) from `get`, `open`, `delete`.
- `list(prefix)` yields every object whose name starts with `prefix`, with its size, in no set order, and
  says when it is complete: its iteration ends normally only when the backend confirmed the listing whole
  (a parsed answer for every page, the page chain followed to its end, counts and the echoed prefix
  agreeing; each backend's module says what it checks). Anything else raises `IncompleteListing` (a
  TransientError, so the retry wrapper lists again), possibly after some entries: a caller that acts on
  what is absent (prune) reads a listing to its end before acting. A failed listing is never empty.
- `put_if_absent` creates an object only when no object of that name exists, atomically: of any
  number of concurrent callers exactly one gets True and its bytes are what everyone reads after.
  Exceptions, documented in their modules: `swift` and `rest`, whose servers check before the upload
  (If-None-Match: * / an existing file) but not atomically with it; sequential callers still see False.
- `remove_leftovers(older_than)` deletes the partial writes an interrupted `put` left behind (temp
  files, unfinished multipart uploads) older than `older_than` seconds; never a finished object.
- A backend whose objects live in a bucket or container also implements `MakesBucket`: a repository's init
  creates a missing bucket, as restic's does.
- Failures that may pass on retry (throttling, 5xx, lost connections) raise `TransientError`;
  the retry wrapper (`retry.py`) decides, not the backend. Everything else is permanent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from stashplan.errors import StashplanError, TransientError


class ObjectNotFound(StashplanError):
    """The named object does not exist in the storage."""

    def __init__(self, location: str, name: str) -> None:
        self.location = location
        self.name = name
        super().__init__(f"{location}: object {name} not found")


class StorageError(StashplanError):
    """A permanent storage failure (access denied, no such bucket, bad configuration)."""


class IncompleteListing(TransientError):
    """A listing the backend did not confirm complete: no body, a short or unparseable one, counts or an
    echoed prefix that disagree, a page chain cut short. Never to be read as an empty or shorter list."""

    def __init__(self, location: str, prefix: str, reason: str) -> None:
        self.location = location
        self.prefix = prefix
        reason = " ".join(reason.split())  # one line, whatever the library's message held
        self.reason = reason if len(reason) <= 200 else reason[:200] + "..."
        super().__init__(f"{location}: listing {prefix or '(all objects)'} is incomplete: {self.reason}")

    @classmethod
    def caused_by(cls, error: Exception, location: str, prefix: str) -> IncompleteListing:
        """The listing was cut by a transient failure: its cause, without the location and `list ...:`."""
        reason = str(error).removeprefix(f"{location}: ").removeprefix(f"list {prefix}: ")
        return cls(location, prefix, reason)

    @classmethod
    def or_error(cls, mapped: Exception, location: str, prefix: str, *, cut: bool = False) -> Exception:
        """What a failed listing page raises: an IncompleteListing when the failure was transient (or `cut`),
        else the backend's own mapped error."""
        return cls.caused_by(mapped, location, prefix) if cut or isinstance(mapped, TransientError) else mapped


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int


Source = bytes | bytearray | memoryview | BinaryIO


class Storage(Protocol):
    """A flat namespace of named byte objects: a directory, a bucket prefix, a dict in memory."""

    @property
    def location(self) -> str:
        """Where the objects live, for messages (e.g. `local:/srv/repo`); never holds credentials."""
        ...

    def put(self, name: str, source: Source) -> None: ...

    def put_if_absent(self, name: str, source: Source) -> bool:
        """Create `name` with `source`'s bytes only if no object of that name exists; True if created.

        Atomic against every other writer of the same storage (local: link of a finished temp file,
        which fails if the name exists; s3: PutObject with `If-None-Match: *`; memory: under its
        lock). A reader sees the whole object or none. False means the name existed and was left
        untouched. Meant for small objects (config, key files): a stream source is read into memory.
        A retried call (RetryingStorage) may return False because its own earlier attempt landed:
        a caller that must know whether it won compares the stored bytes with its own.
        """
        ...

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    def open(self, name: str) -> BinaryIO: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, name: str) -> None: ...

    def exists(self, name: str) -> bool: ...

    def remove_leftovers(self, older_than: float) -> Sequence[str]:
        """Delete what interrupted writes left behind, older than `older_than` seconds; their names.

        Leftovers are never visible as objects (`list` does not yield them): local temp files,
        S3 multipart uploads never completed. Younger ones are kept, as a running writer may own them.
        """
        ...


@runtime_checkable
class MakesBucket(Protocol):
    """A storage in a bucket (container) that may not exist yet: s3, gcs, azure, and the retry wrapper."""

    def make_bucket(self) -> bool:
        """Create the bucket when it does not exist, as restic's `init` does: True when this call created it;
        False when it exists, or when the credentials may not even look (restic carries on then: the first
        read or write says what is wrong). A refused creation is a StorageError in one line naming the
        permission the credentials lack."""
        ...


def check_name(name: str) -> str:
    """The name itself when it is a safe relative key, else ValueError (no '..', no leading '/')."""
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object name {name!r}")
    return name


def as_bytes(source: Source) -> bytes | bytearray | memoryview:
    """The whole content of a put source (reading a stream to EOF)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return source
    return source.read()
