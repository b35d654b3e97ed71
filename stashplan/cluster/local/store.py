"""The embedded default Cluster: Kubernetes object semantics kept in one SQLite file (local mode).

Several processes share the file (the loop and the Job processes it starts): every write is one
IMMEDIATE transaction, readers use WAL. resourceVersion is a global counter; a change log table
serves `watch`. The controllers that a cluster would run live in `stashplan.cluster.local.controllers`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stashplan import managed_fields
from stashplan.cluster.base import WatchEvent, matches_labels
from stashplan.errors import AlreadyExists, Conflict, FieldConflict, Invalid, NotFound
from stashplan.kinds import KINDS, identity, kind_info
from stashplan.managed_fields import FIELD_MANAGER
from stashplan.objects import json_copy, rfc3339
from stashplan.phases import refuse_final_phase_change
from stashplan.secrets import fold_string_data

# Kinds whose status is written only through patch_status (replace keeps the stored status).
STATUS_SUBRESOURCE = frozenset(
    {"Repository", "BackupConfiguration", "BackupSession", "RestoreSession", "CronJob", "Job", "Deployment", "Pod"}
)
_EVENT_LOG_KEEP = 20_000
# PRAGMA user_version once the change log holds no Secret values written by versions before the digest (0: unknown).
_SCRUBBED = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
  kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  uid TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY (kind, namespace, name));
CREATE INDEX IF NOT EXISTS objects_uid ON objects(uid);
CREATE TABLE IF NOT EXISTS changes (
  rv INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), rv INTEGER NOT NULL);
INSERT OR IGNORE INTO counter (id, rv) VALUES (1, 0);
"""


def _dumps(obj: dict) -> str:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()




def _private_file(path: Path) -> None:
    """Create the state file 0600 (in a 0700 folder when we create it); it holds Secrets."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    elif path.parent.name == ".stashplan":
        path.parent.chmod(0o700)
    # Never open (and close) an existing file: closing any descriptor drops this process's SQLite locks.
    if not path.exists():
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _logged(obj: dict) -> dict:
    """What the change log keeps of an object: a Secret's values only as a digest (enough to wake watchers)."""
    if obj.get("kind") != "Secret":
        return obj
    values = {k: obj[k] for k in ("data", "stringData") if k in obj}
    digest = hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return {**{k: v for k, v in obj.items() if k not in values}, "dataDigest": f"sha256:{digest}"}


def _without_apply_time(obj: dict) -> dict:
    """`obj` without its resourceVersion and the times in its managedFields (an apply that changes nothing)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []]
    return {**obj, "metadata": meta}


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class LocalCluster:
    """Kubernetes-shaped objects in a SQLite file at `path` (created with its folder when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _private_file(self.path)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # old Secret values are zeroed, not left in free pages
        self._db.executescript(_SCHEMA)
        self._closed = False
        if self._db.execute("PRAGMA user_version").fetchone()[0] < _SCRUBBED:
            self._scrub_change_log()

    def _scrub_change_log(self) -> None:
        """Replace Secret values kept in the change log by older versions with their digest, once per file: the
        file is then marked (user_version), so later opens skip the scan of the whole log."""
        with self._transaction() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < _SCRUBBED:  # another process may have done it
                if db.execute("SELECT 1 FROM changes WHERE kind='Secret' AND body LIKE '%\"data\"%' LIMIT 1").fetchone():
                    for rv, body in db.execute("SELECT rv, body FROM changes WHERE kind='Secret'").fetchall():
                        db.execute("UPDATE changes SET body=? WHERE rv=?", (_dumps(_logged(orjson.loads(body))), rv))
                db.execute(f"PRAGMA user_version = {_SCRUBBED}")

    def close(self) -> None:
        self._closed = True  # watch streams (own connections, other threads) end at their next poll
        self._db.close()

    # -- reads -------------------------------------------------------------------------------
    def list(
        self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[dict]:
        kind_info(kind)
        if namespace is None or not KINDS[kind].namespaced:
            rows = self._db.execute(
                "SELECT body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,)
            )
        else:
            rows = self._db.execute(
                "SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name", (kind, namespace)
            )
        # Row by row: each body's text is freed as soon as it is parsed (50,000 bodies at once weigh ~100 MiB).
        objs = [orjson.loads(r[0]) for r in rows]
        return objs if not labels else [o for o in objs if matches_labels(o, labels)]

    def list_text(self, kind: str, namespace: str | None = None) -> Iterator[tuple[tuple[str, str, str], str]]:
        """((kind, namespace, name), stored JSON text) of every object of `kind`, in `list` order, unparsed and
        row by row (consume it before the next call): a planner parses each object as it needs it."""
        kind_info(kind)
        if namespace is None or not KINDS[kind].namespaced:
            rows = self._db.execute(
                "SELECT kind, namespace, name, body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,))
        else:
            rows = self._db.execute("SELECT kind, namespace, name, body FROM objects WHERE kind=? AND namespace=? "
                                    "ORDER BY name", (kind, namespace))
        return (((k, ns, name), body) for k, ns, name, body in rows)

    def get(self, kind: str, namespace: str, name: str) -> dict:
        return self._get_in_tx(kind, namespace if kind_info(kind).namespaced else "", name)

    def resource_version(self) -> str:
        return str(self._db.execute("SELECT rv FROM counter WHERE id=1").fetchone()[0])

    # -- writes ------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE): committed when the block ends, rolled back when it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _next_rv(self) -> int:
        self._db.execute("UPDATE counter SET rv = rv + 1 WHERE id=1")
        return int(self._db.execute("SELECT rv FROM counter WHERE id=1").fetchone()[0])

    def _log(self, rv: int, type_: str, obj: dict) -> None:
        self._db.execute(
            "INSERT INTO changes (rv, type, kind, body) VALUES (?,?,?,?)",
            (rv, type_, obj["kind"], _dumps(_logged(obj))),
        )
        if rv % 1000 == 0:
            self._db.execute("DELETE FROM changes WHERE rv < ?", (rv - _EVENT_LOG_KEEP,))

    def _write(self, obj: dict, rv: int, type_: str, insert: bool) -> None:
        kind, ns, name = identity(obj)
        obj["metadata"]["resourceVersion"] = str(rv)
        body = _dumps(obj)
        if insert:
            self._db.execute(
                "INSERT INTO objects (kind, namespace, name, uid, rv, body) VALUES (?,?,?,?,?,?)",
                (kind, ns, name, obj["metadata"]["uid"], rv, body),
            )
        else:
            self._db.execute(
                "UPDATE objects SET rv=?, body=? WHERE kind=? AND namespace=? AND name=?",
                (rv, body, kind, ns, name),
            )
        self._log(rv, type_, obj)

    def create(self, obj: dict) -> dict:
        obj = self._new_object(json_copy(obj))
        with self._transaction():
            self._insert(obj)
        return obj

    @staticmethod
    def _new_object(obj: dict) -> dict:
        """`obj` (a copy) as created: apiVersion, namespace, name (generateName) and server metadata filled in."""
        info = kind_info(obj.get("kind", ""))
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"] = obj.get("apiVersion") or info.api_version
        if info.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise Invalid(info.kind, meta.get("namespace", ""), "", "metadata.name: required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if obj.get("kind") == "Secret":
            obj = fold_string_data(obj)
        meta = obj["metadata"]
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=rfc3339(datetime.now(UTC)))
        meta.pop("deletionTimestamp", None)
        return obj

    def _insert(self, obj: dict) -> None:
        rv = self._next_rv()
        try:
            self._write(obj, rv, "ADDED", insert=True)
        except sqlite3.IntegrityError:
            raise AlreadyExists(*identity(obj)) from None

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict:
        """Server-side apply by `field_manager` (base.py): create, or set its fields and remove the ones it
        applied before and no longer asks for; fields other managers own are never changed (FieldConflict)."""
        obj = json_copy(obj)
        if obj.get("kind") == "Secret":
            obj = fold_string_data(obj)
        meta = obj.setdefault("metadata", {})
        if kind_info(obj.get("kind", "")).namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        kind, ns, name = identity(obj)
        if not name:
            raise Invalid(kind, ns, "", "metadata.name: required (apply needs a name)")
        now = rfc3339(datetime.now(UTC))
        with self._transaction():
            try:
                current = self._get_in_tx(kind, ns, name)
            except NotFound:
                created = self._new_object(managed_fields.applied(None, obj, field_manager, now))
                created.pop("status", None)
                self._insert(created)
                return created
            sent_rv = (obj.get("metadata") or {}).get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise Conflict(kind, ns, name, "the object has been modified; reload and try again")
            if found := managed_fields.conflicts(current, obj, field_manager):
                raise FieldConflict(kind, ns, name, [(c.path, c.manager) for c in found])
            out = managed_fields.applied(current, obj, field_manager, now)
            meta = out["metadata"]
            for key in ("uid", "creationTimestamp", "generation", "name"):
                meta[key] = current["metadata"][key]
            out["apiVersion"] = current["apiVersion"]
            out.pop("status", None)  # status is never applied
            if "status" in current:
                out["status"] = current["status"]
            if _spec_part(out) != _spec_part(current):
                meta["generation"] = int(current["metadata"]["generation"]) + 1
            if _without_apply_time(out) == _without_apply_time(current):
                return current  # nothing changed: no new resourceVersion, no event (as an API server)
            self._write(out, self._next_rv(), "MODIFIED", insert=False)
        return out

    def replace(self, obj: dict) -> dict:
        obj = json_copy(obj)
        kind, ns, name = identity(obj)
        with self._transaction():
            current = self._get_in_tx(kind, ns, name)
            meta = obj.setdefault("metadata", {})
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                raise Conflict(kind, ns, name, "the object has been modified; reload and try again")
            for key in ("uid", "creationTimestamp", "generation"):
                meta[key] = current["metadata"][key]
            if "managedFields" not in meta and "managedFields" in current["metadata"]:
                meta["managedFields"] = current["metadata"]["managedFields"]  # as an API server: kept when omitted
            if kind_info(kind).namespaced:
                meta["namespace"] = ns
            obj["apiVersion"] = current["apiVersion"]
            if kind in STATUS_SUBRESOURCE:
                obj.pop("status", None)
                if "status" in current:
                    obj["status"] = current["status"]
            if _spec_part(obj) != _spec_part(current):
                meta["generation"] = int(current["metadata"]["generation"]) + 1
            self._write(obj, self._next_rv(), "MODIFIED", insert=False)
        return obj

    def patch_status(self, kind: str, namespace: str, name: str, status: dict, *,
                     resource_version: str | None = None) -> dict:
        ns = namespace if kind_info(kind).namespaced else ""
        with self._transaction():
            obj = self._get_in_tx(kind, ns, name)
            have = obj["metadata"].get("resourceVersion")
            if resource_version is not None and have != resource_version:
                raise Conflict(kind, ns, name, f"changed since it was read (resourceVersion {resource_version} -> {have})")
            refuse_final_phase_change(obj, status)
            merged = dict(obj.get("status") or {})
            merged.update(json_copy(status))
            obj["status"] = merged
            self._write(obj, self._next_rv(), "MODIFIED", insert=False)
        return obj

    def delete(self, kind: str, namespace: str, name: str) -> None:
        ns = namespace if kind_info(kind).namespaced else ""
        with self._transaction():
            obj = self._get_in_tx(kind, ns, name)
            self._delete_tree(obj)

    def _delete_tree(self, obj: dict) -> None:
        kind, ns, name = identity(obj)
        self._db.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, ns, name))
        self._log(self._next_rv(), "DELETED", obj)
        uid = obj["metadata"]["uid"]
        # ownerReference garbage collection (background propagation, done at once here).
        pattern = f"%{uid}%"  # a uuid: only bodies that mention it (checked below)
        for (body,) in self._db.execute(
            "SELECT body FROM objects WHERE body LIKE ? AND uid != ?", (pattern, uid)
        ).fetchall():
            child = orjson.loads(body)
            owners = (child.get("metadata") or {}).get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                self._delete_tree(child)

    def _get_in_tx(self, kind: str, ns: str, name: str) -> dict:
        row = self._db.execute(
            "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, ns, name)
        ).fetchone()
        if row is None:
            raise NotFound(kind, ns, name)
        return orjson.loads(row[0])  # type: ignore[no-any-return]

    # -- watch -------------------------------------------------------------------------------
    def watch(
        self, kinds: Sequence[str], since: str | None = None, timeout: float = 10.0
    ) -> Iterator[WatchEvent]:
        """Events of `kinds` after resourceVersion `since` (None: from now), polling until `timeout`."""
        last = int(since) if since is not None else int(self.resource_version())
        wanted = set(kinds)
        deadline = time.monotonic() + timeout
        # A stream polls through its own connection: it runs on a watcher's thread, and closing the
        # cluster's connection under a query on another thread would crash the interpreter.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while not self._closed:
                rows = db.execute(
                    "SELECT rv, type, kind, body FROM changes WHERE rv > ? ORDER BY rv", (last,)
                ).fetchall()
                for rv, type_, kind, body in rows:
                    last = rv
                    if kind in wanted:
                        obj = orjson.loads(body)
                        obj["metadata"]["resourceVersion"] = str(rv)
                        yield WatchEvent(type_, obj)
                if time.monotonic() >= deadline:
                    return
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        finally:
            db.close()
