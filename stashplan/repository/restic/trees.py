"""restic trees: JSON `{"nodes": [...]}` blobs; walking them and finding a file by its path in a snapshot.

Node names are stored as Go's strconv.Quote output without the outer quotes, so they are unquoted
here (non-UTF-8 bytes come back as surrogate escapes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from stashplan.errors import RepositoryError
from stashplan.repository.restic.blobs import BlobLoader
from stashplan.repository.restic.metadata import NodeMeta, check_names, decode_meta

_SIMPLE = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39}


@dataclass(frozen=True)
class Node:
    name: str
    type: str  # file | dir | symlink | dev | chardev | fifo | socket | irregular
    size: int
    content: tuple[bytes, ...]  # data blob ids, in order (files)
    subtree: bytes | None  # tree blob id (dirs)
    meta: NodeMeta = field(default_factory=NodeMeta)


def go_unquote(text: str) -> str:
    """The inverse of Go's strconv.Quote on a name stored without its surrounding quotes."""
    if "\\" not in text:
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "\\" or i + 1 == len(text):
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        esc = text[i + 1]
        if esc in _SIMPLE:
            out.append(_SIMPLE[esc])
            i += 2
        elif esc == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        elif esc in "uU":
            width = 4 if esc == "u" else 8
            out += chr(int(text[i + 2 : i + 2 + width], 16)).encode("utf-8", "surrogatepass")
            i += 2 + width
        elif esc in "01234567":
            out.append(int(text[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            raise ValueError(f"bad escape \\{esc}")
    return out.decode("utf-8", "surrogateescape")


def parse_tree(data: bytes, what: str) -> list[Node]:
    try:
        doc = orjson.loads(data)
        nodes = []
        for n in doc["nodes"] or ():
            subtree = n.get("subtree")
            nodes.append(
                Node(
                    go_unquote(str(n["name"])),
                    str(n["type"]),
                    int(n.get("size") or 0),
                    tuple(bytes.fromhex(c) for c in n.get("content") or ()),
                    bytes.fromhex(subtree) if subtree else None,
                    decode_meta(n),
                )
            )
        return nodes
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RepositoryError(f"{what} is malformed: {exc}") from None


def load_tree(loader: BlobLoader, tree_id: bytes) -> list[Node]:
    return parse_tree(loader.load(tree_id, "tree"), f"tree {tree_id.hex()[:16]}")


def load_safe_tree(loader: BlobLoader, tree_id: bytes) -> list[Node]:
    """A tree whose node names are safe to write to a file system (one component each, no repeats)."""
    nodes = load_tree(loader, tree_id)
    check_names([n.name for n in nodes], f"{loader.context}: tree {tree_id.hex()[:16]}")
    return nodes


def walk(loader: BlobLoader, tree_id: bytes, prefix: str = "", *, safe: bool = False) -> Iterator[tuple[str, Node]]:
    """Every node under the tree with its path ("/a/b"), depth first in stored order, a directory before
    its content; without recursion, so a tree of any depth is walked. With `safe`, names are checked as
    `load_safe_tree` does."""
    load = load_safe_tree if safe else load_tree
    stack: list[tuple[str, Iterator[Node]]] = [(prefix, iter(load(loader, tree_id)))]
    while stack:
        where, nodes = stack[-1]
        node = next(nodes, None)
        if node is None:
            stack.pop()
            continue
        path = f"{where}/{node.name}"
        yield path, node
        if node.type == "dir" and node.subtree is not None:
            stack.append((path, iter(load(loader, node.subtree))))


def find(loader: BlobLoader, tree_id: bytes, path: str) -> Node:
    """The node at `path` ("/dumpfile.sql", "home/me/db.sql") below the tree; RepositoryError if absent."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise RepositoryError("a path inside the snapshot is required, e.g. /dumpfile.sql")
    current = tree_id
    for depth, part in enumerate(parts):
        nodes = {n.name: n for n in load_tree(loader, current)}
        node = nodes.get(part)
        if node is None:
            raise RepositoryError(
                f"{loader.context}: no {'/' + '/'.join(parts[: depth + 1])} in the snapshot"
            )
        if depth == len(parts) - 1:
            return node
        if node.type != "dir" or node.subtree is None:
            raise RepositoryError(
                f"{loader.context}: {'/' + '/'.join(parts[: depth + 1])} is not a directory"
            )
        current = node.subtree
    raise AssertionError("unreachable")
