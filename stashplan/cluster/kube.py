"""The Cluster interface on a Kubernetes API server via the official client, generic by kind. I/O layer.

Every call goes through one request path (`ApiClient.call_api` with paths built from `stashplan.kinds`),
wrapped by a retry with exponential backoff on 429, 5xx and transport timeouts. A create retried after
a 5xx the server had in fact applied surfaces as AlreadyExists, which the planner settles next iteration.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from stashplan import managed_fields
from stashplan.backoff import RetryPolicy, retrying
from stashplan.cluster.base import WatchEvent
from stashplan.errors import (
    AlreadyExists,
    Conflict,
    FieldConflict,
    Forbidden,
    Invalid,
    NotFound,
    ObjectError,
    StashplanError,
    TransientError,
)
from stashplan.kinds import KINDS, KindInfo, kind_info
from stashplan.managed_fields import FIELD_MANAGER
from stashplan.phases import refuse_final_phase_change

T = TypeVar("T")
log = logging.getLogger("stashplan.cluster.kube")

# Every (kind -> verbs) stashplan calls through this adapter when running as the operator or a Job.
# specs/deploy's ClusterRole grants exactly these (tests/unit/test_deploy_rbac.py checks both ways).
# Status writes are the `patch` verb on the `<plural>/status` subresource.
_READ = frozenset({"get", "list", "watch"})
_WRITE = frozenset({"create", "update", "patch", "delete"})  # patch: server-side apply of what plans write
API_USAGE: dict[str, frozenset[str]] = {
    "Repository": _READ | _WRITE,  # create/update/delete: auto-backup (BackupBlueprint)
    "BackupConfiguration": _READ | _WRITE,
    "BackupSession": _READ | _WRITE,
    "RestoreSession": _READ,
    "Task": _READ,
    "Function": _READ,
    "BackupBlueprint": _READ,
    "AppBinding": _READ,
    "Namespace": frozenset({"get", "list"}),
    "Event": frozenset({"create"}),
    "Pod": _READ,
    "CronJob": _READ | _WRITE,
    "Job": _READ | _WRITE,
    "Deployment": _READ | _WRITE,  # a BackupConfiguration's WAL receiver (Task param walArchive=receive)
    "Lease": frozenset({"get", "create", "update"}),
    "ServiceAccount": _READ | {"create", "update", "patch"},
    "Role": _READ | {"create", "update", "patch"},  # a custom ServiceAccount's Role of its invoker's objects only
    "RoleBinding": _READ | {"create", "update", "patch"},
    "CustomResourceDefinition": frozenset({"get"}),  # whose installation owns the Stash kinds (--scope auto)
}
# What the Job and trigger pods call (ClusterRole stashplan-job, bound per namespace by the planner).
JOB_API_USAGE: dict[str, frozenset[str]] = {
    "BackupConfiguration": frozenset({"get"}),
    "RestoreSession": frozenset({"get"}),
    "Repository": frozenset({"get"}),
    "BackupSession": frozenset({"get", "create"}),
    "AppBinding": frozenset({"get"}),
    "Event": frozenset({"create"}),
    "Deployment": frozenset({"get"}),  # a WAL receiver reads its own at its stop: gone, its slot is dropped
}
JOB_STATUS_WRITERS = ("BackupSession", "RestoreSession", "Repository")
STATUS_WRITERS = ("Repository", "BackupConfiguration", "BackupSession", "RestoreSession")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_UNCONDITIONAL_ATTEMPTS = 5
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, TimeoutError, ConnectionError)


class _Retryable(Exception):
    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def with_retry(policy: RetryPolicy, what: str, call: Callable[[], T]) -> T:
    """Run `call`, retrying on _Retryable with backoff; TransientError naming `what` when attempts run out."""
    try:
        return retrying(policy, call, transient=_Retryable)
    except _Retryable as exc:
        raise TransientError(f"{what}: {exc} (gave up after {policy.attempts} attempts)") from None


@dataclass(frozen=True)
class _Target:
    """What a request is about, for error messages and typed exceptions."""

    verb: str
    info: KindInfo
    namespace: str
    name: str
    subresource: str = ""

    @property
    def resource(self) -> str:
        res = self.info.plural + (f"/{self.subresource}" if self.subresource else "")
        return f"{res}.{self.info.group}" if self.info.group else res


def _api_client(kubeconfig: str | None, context: str | None) -> k8s_client.ApiClient:
    """kubeconfig argument, else $KUBECONFIG or ~/.kube/config when present, else in-cluster config
    (KUBERNETES_SERVICE_HOST/PORT and the pod's ServiceAccount token and CA in SERVICE_ACCOUNT_DIR, or in
    $STASHPLAN_SERVICE_ACCOUNT_DIR where a runtime mounts them elsewhere)."""
    cfg = k8s_client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG") or ""
    default = Path.home() / ".kube" / "config"
    if not path and default.exists():
        path = str(default)
    if path:
        try:
            k8s_config.load_kube_config(
                config_file=path, context=context, client_configuration=cfg, persist_config=False
            )
        except Exception as exc:  # the client raises anything (TypeError, KeyError...) on a malformed file
            raise StashplanError(f"kubeconfig {path}: cannot load it: {exc}") from None
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        sa_dir = Path(os.environ.get("STASHPLAN_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT_DIR)
        try:
            k8s_config.incluster_config.InClusterConfigLoader(
                token_filename=str(sa_dir / "token"), cert_filename=str(sa_dir / "ca.crt")
            ).load_and_set(cfg)
        except k8s_config.ConfigException as exc:
            raise StashplanError(f"in-cluster config: {exc}") from None
    else:
        raise StashplanError("no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not in a cluster")
    return k8s_client.ApiClient(cfg)


class KubeCluster:
    """A Kubernetes API server as a Cluster: typed errors, optimistic writes, label-selected lists, watches."""

    # Plans over a cluster read no Secrets (the operator holds no Secret permission; a Job reports a missing one).
    reads_secrets = False

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._api = _api_client(kubeconfig, context)
        self._retry = retry or RetryPolicy()
        self._timeout = timeout

    # -- the Cluster interface -------------------------------------------------------------------

    def list(
        self, kind: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[dict]:
        info = kind_info(kind)
        return self._list(info, namespace, labels)[0]

    def get(self, kind: str, namespace: str, name: str) -> dict:
        info = kind_info(kind)
        target = _Target("get", info, _ns(info, namespace), name)
        return _typed(info, self._call(target, "GET"))

    def create(self, obj: dict) -> dict:
        info, body, meta, ns = _request_body(obj)
        name = meta.get("name") or meta.get("generateName", "")
        target = _Target("create", info, ns, name)
        return _typed(info, self._call(target, "POST", body=body, collection=True))

    def replace(self, obj: dict) -> dict:
        info, body, meta, ns = _request_body(obj)
        target = _Target("update", info, ns, meta.get("name", ""))
        if meta.get("resourceVersion"):
            return _typed(info, self._call(target, "PUT", body=body))
        # Unconditional: custom resources refuse an update without resourceVersion (422), so write over
        # the current one, reading it again when someone else wrote in between.
        for attempt in range(_UNCONDITIONAL_ATTEMPTS):
            current = self._call(_Target("get", info, ns, target.name), "GET")
            meta["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion", "")
            try:
                return _typed(info, self._call(target, "PUT", body=body))
            except Conflict:
                if attempt == _UNCONDITIONAL_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def apply(self, obj: dict, *, field_manager: str = FIELD_MANAGER) -> dict:
        """Server-side apply: PATCH application/apply-patch+yaml as `field_manager`, force off. The API server
        removes what this manager applied before and no longer sends; a field another manager owns that this
        would change is its 409 conflict, raised as FieldConflict naming field and manager. On its own objects
        written by an earlier stashplan (managed_fields.LEGACY_MANAGERS), stashplan first takes over what those
        writes own, once, and applies again."""
        info, body, meta, ns = _request_body(obj)
        body.pop("status", None)
        for key in ("managedFields", "uid", "creationTimestamp", "generation"):
            meta.pop(key, None)
        target = _Target("patch", info, ns, meta.get("name", ""))
        query = {"fieldManager": field_manager, "force": "false"}

        def send() -> dict:
            return _typed(info, self._call(target, "PATCH", query=query, body=json.dumps(body),
                                           content_type="application/apply-patch+yaml"))

        try:
            out: dict | None = send()
        except FieldConflict as exc:
            if not all(manager in managed_fields.LEGACY_MANAGERS for _, manager in exc.fields):
                raise
            out, refused = None, exc
        current = out or self.get(info.kind, ns, target.name)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries = managed_fields.adopted(current, field_manager, stamp)
        if entries is None:
            if out is None:
                raise refused
            return out
        have = current["metadata"].get("resourceVersion")
        if out is None and meta.get("resourceVersion") not in (None, have):
            raise Conflict(info.kind, ns, target.name, "the object has been modified; reload and try again")
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": have},
               {"op": "replace", "path": "/metadata/managedFields", "value": entries}]
        taken = self._call(target, "PATCH", body=ops, content_type="application/json-patch+json")
        if meta.get("resourceVersion"):
            meta["resourceVersion"] = (taken.get("metadata") or {}).get("resourceVersion")
        return send()

    def delete(self, kind: str, namespace: str, name: str) -> None:
        info = kind_info(kind)
        target = _Target("delete", info, _ns(info, namespace), name)
        self._call(target, "DELETE", query={"propagationPolicy": "Background"})

    def patch_status(self, kind: str, namespace: str, name: str, status: dict, *,
                     resource_version: str | None = None) -> dict:
        """Replace the given top-level .status keys, conditionally: one JSON patch whose first op tests the
        resourceVersion read (`resource_version` when given), so the server refuses it if anything was written in
        between; a final session phase never changes. Without `resource_version`, a write that lost such a race
        reads again and retries (a few times); with it, the race is the caller's Conflict."""
        info = kind_info(kind)
        ns = _ns(info, namespace)
        target = _Target("patch", info, ns, name, "status")
        for attempt in range(5):
            current = self.get(kind, namespace, name)
            have = current["metadata"].get("resourceVersion")
            if resource_version is not None and have != resource_version:
                raise Conflict(kind, ns, name, f"changed since it was read (resourceVersion {resource_version} -> {have})")
            refuse_final_phase_change(current, status)
            ops: list[dict] = [{"op": "test", "path": "/metadata/resourceVersion", "value": have}]
            if isinstance(current.get("status"), dict):
                ops += [{"op": "add", "path": f"/status/{_pointer(k)}", "value": v} for k, v in status.items()]
            else:
                ops.append({"op": "add", "path": "/status", "value": status})
            try:
                return _typed(info, self._call(target, "PATCH", body=ops, content_type="application/json-patch+json"))
            except (Invalid, Conflict) as exc:
                now = self.get(kind, namespace, name)["metadata"].get("resourceVersion")
                if now == have:
                    raise  # refused for another reason than a concurrent write
                if resource_version is not None or attempt == 4:
                    raise Conflict(kind, ns, name, f"changed while its status was written ({exc})") from None
        raise AssertionError("unreachable")

    def watch(
        self, kinds: Sequence[str], since: str | None = None, timeout: float = 10.0
    ) -> Iterator[WatchEvent]:
        """Events of `kinds` after resourceVersion `since` (None: from now) for `timeout` seconds.

        Each kind streams in its own thread; a stream that ends early resumes from the last
        resourceVersion seen; 410 Gone relists the kind (its objects come again as ADDED); transient
        API errors are retried until `timeout` (an informer's behaviour). Other errors are raised.
        """
        deadline = time.monotonic() + timeout
        infos = [kind_info(k) for k in kinds]
        events: queue.Queue[WatchEvent | BaseException | None] = queue.Queue()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=self._watch_kind,
                args=(info, since, deadline, events, stop),
                name=f"watch-{info.plural}",
                daemon=True,
            )
            for info in infos
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = events.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()

    def close(self) -> None:
        self._api.close()

    # -- plumbing --------------------------------------------------------------------------------

    def _list(
        self,
        info: KindInfo,
        namespace: str | None,
        labels: Mapping[str, str] | None,
        limit: int | None = None,
    ) -> tuple[builtins.list[dict], str]:
        target = _Target("list", info, _ns(info, namespace or ""), "")
        query: dict[str, str] = {}
        if labels:
            query["labelSelector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if limit:
            query["limit"] = str(limit)
        out = self._call(target, "GET", query=query, collection=True)
        items = [_typed(info, item) for item in out.get("items") or []]
        return items, str((out.get("metadata") or {}).get("resourceVersion", ""))

    def _watch_kind(
        self,
        info: KindInfo,
        since: str | None,
        deadline: float,
        events: queue.Queue[WatchEvent | BaseException | None],
        stop: threading.Event,
    ) -> None:
        try:
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0.05:
                try:
                    if since is None:  # "from now": the collection's current resourceVersion
                        since = self._list(info, None, None, limit=1)[1]
                    since = self._stream(info, since, left, deadline, events, stop)
                except TransientError as exc:
                    log.warning("watch %s: %s; retrying", info.plural, exc)
                    stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        except BaseException as exc:
            events.put(exc)
        finally:
            events.put(None)

    def _stream(
        self,
        info: KindInfo,
        since: str,
        left: float,
        deadline: float,
        events: queue.Queue[WatchEvent | BaseException | None],
        stop: threading.Event,
    ) -> str:
        """One watch request; returns the resourceVersion to resume from."""
        target = _Target("watch", info, "", "")
        query = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(1, round(left))),
        }
        if since:
            query["resourceVersion"] = since
        resp = self._open(target, query, timeout=left + 5)
        try:
            for line in _lines(resp):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        items, rv = self._list(info, None, None)
                        for item in items:
                            events.put(WatchEvent("ADDED", item))
                        return rv
                    raise _error(target, int(obj.get("code") or 500), obj)
                since = str((obj.get("metadata") or {}).get("resourceVersion") or since)
                if event.get("type") != "BOOKMARK":
                    events.put(WatchEvent(str(event["type"]), _typed(info, obj)))
        finally:
            resp.release_conn()
            resp.close()
        return since

    def _open(self, target: _Target, query: dict[str, str], timeout: float) -> urllib3.HTTPResponse:
        def attempt() -> urllib3.HTTPResponse:
            resp = self._send(target, "GET", query, None, None, timeout, collection=True)
            if resp.status == 410:
                resp.read()
                return _gone_stream()
            if resp.status >= 300:
                raise self._failure(target, resp.status, resp.response)
            return resp.response

        return with_retry(self._retry, f"watch {target.resource}", attempt)

    def _call(
        self,
        target: _Target,
        method: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        collection: bool = False,
    ) -> dict:
        def attempt() -> dict:
            resp = self._send(target, method, query, body, content_type, self._timeout, collection)
            data = resp.read()
            if resp.status >= 300:
                raise self._failure(target, resp.status, resp.response, data)
            return json.loads(data) if data else {}

        what = f"{target.verb} {target.resource} {target.name}".rstrip()
        return with_retry(self._retry, what, attempt)

    def _send(
        self,
        target: _Target,
        method: str,
        query: dict[str, str] | None,
        body: Any,
        content_type: str | None,
        timeout: float,
        collection: bool,
    ) -> Any:
        path = _path(target.info, target.namespace, None if collection else target.name, target.subresource)
        headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
        _, url, headers, body, _ = self._api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers,
            body=body, auth_settings=["BearerToken"],
        )  # fmt: skip
        try:
            return self._api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        except _TRANSPORT_ERRORS as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None

    def _failure(self, target: _Target, status: int, raw: Any, data: bytes | None = None) -> Exception:
        if data is None:
            data = raw.read()
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            payload = {"message": data.decode(errors="replace")[:200]}
        if status in _RETRY_STATUSES:
            retry_after = raw.headers.get("Retry-After") if raw is not None else None
            wait = float(retry_after) if retry_after and retry_after.isdigit() else None
            return _Retryable(f"HTTP {status} {payload.get('message', '')}".strip(), wait)
        return _error(target, status, payload)


def _error(target: _Target, status: int, payload: Mapping[str, Any]) -> ObjectError:
    """The stashplan error for a failed API call: typed by status (and reason for 409)."""
    message = str(payload.get("message") or payload.get("reason") or f"HTTP {status}")
    kind, ns, name = target.info.kind, target.namespace, target.name
    if status == 404:
        return NotFound(kind, ns, name, message)
    if status == 409:
        reason = str(payload.get("reason") or "")
        owned = _field_conflicts(payload)
        if owned:
            return FieldConflict(kind, ns, name, owned)
        if reason == "AlreadyExists" or (target.verb == "create" and reason != "Conflict"):
            return AlreadyExists(kind, ns, name, message)
        return Conflict(kind, ns, name, message)
    if status in (401, 403):
        where = f" in namespace {ns}" if ns else ""
        return Forbidden(kind, ns, name, f"cannot {target.verb} {target.resource}{where}: {message}")
    return Invalid(kind, ns, name, f"HTTP {status}: {message}")


_CONFLICT_WITH = re.compile(r'conflict with "([^"]*)"')


def _field_conflicts(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, manager) of each server-side apply conflict a 409 names (details.causes, FieldManagerConflict)."""
    causes = (payload.get("details") or {}).get("causes") or []
    out = []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "FieldManagerConflict":
            found = _CONFLICT_WITH.search(str(cause.get("message") or ""))
            out.append((str(cause.get("field") or "").lstrip("."), found.group(1) if found else "another manager"))
    return out


def _lines(resp: Any) -> Iterator[bytes]:
    """The stream's lines; a connection lost mid-stream just ends it (the caller resumes from its rv)."""
    try:
        yield from resp
    except _TRANSPORT_ERRORS as exc:
        log.info("watch stream ended: %s", exc)


def _gone_stream() -> Any:
    """A watch stream holding one 410 ERROR event, so an expired resourceVersion relists like in-stream 410."""
    line = json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}})
    return _Lines([line.encode()])


class _Lines(list):  # type: ignore[type-arg]
    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


def _ns(info: KindInfo, namespace: str) -> str:
    return namespace if info.namespaced else ""


def _path(info: KindInfo, namespace: str, name: str | None, subresource: str = "") -> str:
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    if info.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{info.plural}"
    if name is not None:
        base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
    return base


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _with_type(info: KindInfo, obj: dict) -> dict:
    body = json.loads(json.dumps(obj))
    body["apiVersion"] = info.api_version
    body["kind"] = info.kind
    return body


def _request_body(obj: dict) -> tuple[KindInfo, dict, dict, str]:
    """A copy of `obj` to send (apiVersion/kind set, namespace defaulted), with its kind, metadata and namespace."""
    info = kind_info(str(obj.get("kind", "")))
    body = _with_type(info, obj)
    meta = body.setdefault("metadata", {})
    ns = _ns(info, meta.get("namespace") or "default")
    if info.namespaced:
        meta["namespace"] = ns
    return info, body, meta, ns


def _typed(info: KindInfo, obj: dict) -> dict:
    """Lists and some watch events omit apiVersion/kind on items; put them back."""
    obj.setdefault("apiVersion", info.api_version)
    obj.setdefault("kind", info.kind)
    return obj


__all__ = ["API_USAGE", "JOB_API_USAGE", "JOB_STATUS_WRITERS", "KINDS", "STATUS_WRITERS", "KubeCluster",
           "RetryPolicy", "with_retry"]
