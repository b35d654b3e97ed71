"""Objects of one kind kept as their stored JSON text, each parsed when read (a fresh dict every time). Pure.

The desired-state computation never reads CronJobs: a plan only compares each wanted one with what exists, so
50,000 of them need not all be parsed at once (their text takes a quarter of the memory)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import orjson

Key = tuple[str, str, str]  # (kind, namespace, name), as stashplan.kinds.identity


class StoredObjects(Sequence[dict]):
    """A read-only sequence of objects, in the order given, from (identity, JSON text) pairs."""

    def __init__(self, rows: Iterable[tuple[Key, str | bytes]]) -> None:
        self._text = dict(rows)
        self._keys = list(self._text)

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> dict: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict]: ...

    def __getitem__(self, index: int | slice) -> dict | list[dict]:
        if isinstance(index, slice):
            return [self.get(k) or {} for k in self._keys[index]]
        return orjson.loads(self._text[self._keys[index]])  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[dict]:
        return (orjson.loads(text) for text in self._text.values())

    def keys(self) -> list[Key]:
        """The identities, in order, without parsing anything."""
        return self._keys

    def get(self, key: Key) -> dict | None:
        """The object with this identity, parsed now; None when there is none."""
        text = self._text.get(key)
        return None if text is None else orjson.loads(text)  # type: ignore[no-any-return]

    def except_keys(self, skip: Iterable[Key] | set[Key]) -> Iterator[tuple[Key, dict]]:
        """(identity, object) of those whose identity is not in `skip`, in order; only those are parsed."""
        skip = skip if isinstance(skip, set | frozenset) else set(skip)
        return ((k, orjson.loads(t)) for k, t in self._text.items() if k not in skip)
