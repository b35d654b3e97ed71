"""A test kubelet: Pods become local processes, or, in image mode, containers of the stashplan image run by runc.

It registers a Node, binds Pending Pods to it, and runs each Pod's containers (init containers in order,
then the main ones together) with the Pod's env: values, Secret/ConfigMap/field refs, envFrom, $(VAR)
expansion, KUBERNETES_SERVICE_HOST/PORT and a TokenRequest token of the Pod's ServiceAccount. It writes Pod
status (tests/kube/podstatus.py) through the API, kills the containers of Pods being deleted and removes them.
Process mode: the token's folder is STASHPLAN_SERVICE_ACCOUNT_DIR; an image's entry point comes from
`entrypoints`; volumes other than the token and securityContext are not enforced. Image mode (`runtime`):
containers of the runtime's image run from it with its entry point, env and user and the Pod's volumes, the
token at Kubernetes' path (tests/kube/podimage.py, tests/kube/runc.py). Not enforced in either: restarts
(restartPolicy Always ends like Never), resources, probes, network isolation (all share the host's network).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from base64 import b64decode
from dataclasses import dataclass, field
from pathlib import Path

from tests.kube import podimage
from tests.kube.podstatus import Container, now, pod_status
from tests.kube.rest import ApiError, Rest
from tests.kube.runc import Runc

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, unknown kept, $$ escapes a dollar."""
    return _VAR.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


class PodError(Exception):
    """The pod cannot start (a missing Secret key, no command): reported as the pod's failure."""


@dataclass
class _PodRun:
    namespace: str
    name: str
    uid: str
    folder: Path
    thread: threading.Thread | None = None
    containers: list[Container] = field(default_factory=list)
    killed: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class TestKubelet:
    """Runs the Pods of one Node; `start()` a background thread, `stop()` kills what it started."""

    __test__ = False

    def __init__(self, api: Rest, workdir: Path, *, node: str = "test-node", api_port: int,
                 ca_file: Path, entrypoints: dict[str, list[str]] | None = None,
                 path_prefix: str = "", poll: float = 0.3, image_env: dict[str, str] | None = None,
                 runtime: Runc | None = None) -> None:  # fmt: skip
        self.api = api
        self.runtime = runtime
        self.image_env = dict(image_env or {})  # what the image itself sets (e.g. where its code is)
        self.workdir = workdir
        self.node = node
        self.api_port = api_port
        self.ca_file = ca_file
        self.entrypoints = entrypoints or {}
        self.path_prefix = path_prefix
        self.poll = poll
        self.runs: dict[str, _PodRun] = {}  # by pod uid
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-kubelet", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.register_node()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for run in list(self.runs.values()):
            self._kill(run, grace=2)

    def register_node(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node,
                                                           "kubernetes.io/os": "linux"}}}  # fmt: skip
        try:
            self.api.post("/api/v1/nodes", body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        resources = {"cpu": "2", "memory": "8Gi", "pods": "110"}
        status = {"status": {
            "capacity": resources, "allocatable": resources,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "test kubelet runs pods as local processes",
                            "lastHeartbeatTime": now(), "lastTransitionTime": now()}],
            "nodeInfo": {"kubeletVersion": "test-kubelet", "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "local-process://0", "kernelVersion": os.uname().release,
                         "osImage": "local", "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""},
        }}  # fmt: skip
        self.api.merge_patch(f"/api/v1/nodes/{self.node}/status", status)

    # -- the sync loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # keep running; the test reads `errors`
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.poll)

    def sync(self) -> None:
        pods = self.api.get("/api/v1/pods").get("items") or []
        seen = set()
        for pod in pods:
            meta, spec = pod["metadata"], pod.get("spec") or {}
            uid = meta["uid"]
            seen.add(uid)
            if not spec.get("nodeName"):
                if not meta.get("deletionTimestamp") and spec.get("schedulerName") in (None, "default-scheduler"):
                    self._bind(pod)
                continue
            if spec["nodeName"] != self.node:
                continue
            run = self.runs.get(uid)
            if meta.get("deletionTimestamp"):
                if run is not None:
                    self._kill(run, grace=min(5, int(meta.get("deletionGracePeriodSeconds") or 0)))
                    del self.runs[uid]
                self._remove(pod)
                continue
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if run is None and phase == "Pending":
                self._start(pod)
        for uid in [u for u in self.runs if u not in seen]:  # force-deleted: the object is already gone
            self._kill(self.runs.pop(uid), grace=0)

    def _bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}}  # fmt: skip
        try:
            self.api.post(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding)
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def _remove(self, pod: dict) -> None:
        meta = pod["metadata"]
        try:
            self.api.call("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                          {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})  # fmt: skip
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    # -- running a pod -------------------------------------------------------------------------------

    def _start(self, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        folder = self.workdir / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        folder.mkdir(parents=True, exist_ok=True)
        run = _PodRun(meta["namespace"], meta["name"], meta["uid"], folder)
        self.runs[run.uid] = run
        try:
            base = self._pod_env(pod, folder)
            volumes = self._volumes(pod, folder)
            init = [self._container(pod, c, base, folder, volumes) for c in spec.get("initContainers") or []]
            main = [self._container(pod, c, base, folder, volumes) for c in spec.get("containers") or []]
        except podimage.NotReady:
            del self.runs[run.uid]  # Pending: tried again at the next sync
            return
        except (PodError, ApiError, podimage.ContainerError) as exc:
            self._status(pod, run, [], failed_to_start=str(exc))
            run.done.set()
            return
        run.containers = init + main
        run.thread = threading.Thread(target=self._run, args=(pod, run, init, main), daemon=True)
        run.thread.start()

    def _pod_env(self, pod: dict, folder: Path) -> dict[str, str]:
        """The process environment every container starts from: no host credentials, the in-cluster config."""
        tmp = folder / "tmp"
        tmp.mkdir(exist_ok=True)
        env = {"PATH": self.path_prefix + os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder),
               "TMPDIR": str(tmp), "LANG": "C.UTF-8", "HOSTNAME": pod["metadata"]["name"],
               "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.api_port),
               **self.image_env}  # fmt: skip
        spec = pod["spec"]
        if spec.get("automountServiceAccountToken") is not False:
            sa_dir = folder / "serviceaccount"
            sa_dir.mkdir(exist_ok=True)
            token = self._token(pod)
            (sa_dir / "token").write_text(token)
            (sa_dir / "token").chmod(0o600)
            shutil.copy(self.ca_file, sa_dir / "ca.crt")
            (sa_dir / "namespace").write_text(pod["metadata"]["namespace"])
            env["STASHPLAN_SERVICE_ACCOUNT_DIR"] = str(sa_dir)
        return env

    def _token(self, pod: dict) -> str:
        """A token for the pod's ServiceAccount, bound to the pod (invalid once it is deleted)."""
        meta = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": 3600,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                               "uid": meta["uid"]}}}  # fmt: skip
        out = self.api.post(f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", request)
        return str(out["status"]["token"])

    def _in_image(self, c: dict) -> bool:
        return self.runtime is not None and self.runtime.image.serves(str(c.get("image") or ""))

    def _volumes(self, pod: dict, folder: Path) -> dict[str, Path]:
        spec = pod["spec"]
        if not any(self._in_image(c) for c in [*spec.get("initContainers", []), *spec.get("containers", [])]):
            return {}
        token = folder / "serviceaccount" / "token"
        sources = podimage.Sources(self._secret, self._configmap, lambda: token.read_text() if token.is_file()
                                   else self._token(pod), self._fields(pod))  # fmt: skip
        try:
            return podimage.volumes(pod, folder, sources)
        except PodError as exc:  # a missing Secret or ConfigMap: a kubelet waits for it (ContainerCreating)
            raise podimage.NotReady(str(exc)) from None

    def _container(self, pod: dict, c: dict, base: dict[str, str], folder: Path,
                   volumes: dict[str, Path]) -> Container:  # fmt: skip
        ns = pod["metadata"]["namespace"]
        runtime = self.runtime if self._in_image(c) else None
        env = podimage.base_env(runtime.image, pod, self.api_port) if runtime else dict(base)
        for source in c.get("envFrom") or []:
            prefix = source.get("prefix") or ""
            if ref := source.get("secretRef"):
                env.update({prefix + k: v for k, v in self._secret(ns, ref["name"], ref.get("optional")).items()})
            elif ref := source.get("configMapRef"):
                env.update({prefix + k: v for k, v in self._configmap(ns, ref["name"], ref.get("optional")).items()})
        for item in c.get("env") or []:
            value = self._env_value(pod, item, env)
            if value is not None:
                env[item["name"]] = value
        if runtime is not None:
            argv = [expand(str(a), env) for a in podimage.command(runtime.image, c)]
            cid = f"{pod['metadata']['uid']}-{c['name']}"
            process = podimage.process(runtime.image, pod, c, argv, env)
            mounts = podimage.mounts(pod, c, volumes, folder)
            readonly = bool((c.get("securityContext") or {}).get("readOnlyRootFilesystem"))
            launch = runtime.argv(folder / "bundles" / c["name"], cid, process, mounts,
                                  hostname=pod["metadata"]["name"], readonly_root=readonly)  # fmt: skip
            return Container(c["name"], launch, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, str(folder),
                             folder / f"{c['name']}.log", cid=cid)  # fmt: skip
        command = list(c.get("command") or [])
        if not command:
            image = str(c.get("image") or "")
            command = next((list(ep) for key, ep in self.entrypoints.items() if key in image), [])
            if not command:
                raise PodError(f"container {c['name']}: no command, and image {image!r} has no known entry point")
        argv = [expand(str(a), env) for a in command + list(c.get("args") or [])]
        cwd = c.get("workingDir") if c.get("workingDir") and Path(c["workingDir"]).is_dir() else str(folder)
        return Container(c["name"], argv, env, cwd, folder / f"{c['name']}.log")

    def _env_value(self, pod: dict, item: dict, env: dict[str, str]) -> str | None:
        if "value" in item:
            return expand(str(item["value"]), env)
        source = item.get("valueFrom") or {}
        ns = pod["metadata"]["namespace"]
        if ref := source.get("secretKeyRef"):
            return self._key(self._secret(ns, ref["name"], ref.get("optional")), ref, "Secret", ns)
        if ref := source.get("configMapKeyRef"):
            return self._key(self._configmap(ns, ref["name"], ref.get("optional")), ref, "ConfigMap", ns)
        if ref := source.get("fieldRef"):
            fields = self._fields(pod)
            if ref["fieldPath"] not in fields:
                raise PodError(f"env {item['name']}: fieldRef {ref['fieldPath']} is not supported here")
            return fields[ref["fieldPath"]]
        return ""

    def _fields(self, pod: dict) -> dict[str, str]:
        """The fieldRef paths a kubelet resolves (env valueFrom, downwardAPI volumes)."""
        return {"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"]["namespace"],
                "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": self.node,
                "spec.serviceAccountName": pod["spec"].get("serviceAccountName") or "default",
                "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}  # fmt: skip

    @staticmethod
    def _key(data: dict[str, str] | None, ref: dict, kind: str, ns: str) -> str | None:
        if data is None:
            return None
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise PodError(f"{kind} {ns}/{ref['name']} has no key {ref['key']!r}")
        return data[ref["key"]]

    def _secret(self, ns: str, name: str, optional: bool | None) -> dict[str, str]:
        try:
            secret = self.api.get(f"/api/v1/namespaces/{ns}/secrets/{name}")
        except ApiError as exc:
            if exc.status == 404 and optional:
                return {}
            if exc.status == 404:
                raise PodError(f"Secret {ns}/{name} not found") from None
            raise
        return {k: b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}

    def _configmap(self, ns: str, name: str, optional: bool | None) -> dict[str, str]:
        try:
            return dict(self.api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}").get("data") or {})
        except ApiError as exc:
            if exc.status == 404 and optional:
                return {}
            if exc.status == 404:
                raise PodError(f"ConfigMap {ns}/{name} not found") from None
            raise

    def _run(self, pod: dict, run: _PodRun, init: list[Container], main: list[Container]) -> None:
        try:
            for c in init:
                self._spawn(c)
                self._status(pod, run, init + main)
                self._finish(c)
                if c.exit_code != 0 or run.killed:
                    return
            for c in main:
                self._spawn(c)
            self._status(pod, run, init + main)
            for c in main:
                self._finish(c)
        except OSError as exc:
            for c in run.containers:
                if c.exit_code is None:
                    c.exit_code, c.finished = 128, now()
            self.errors.append(f"pod {run.namespace}/{run.name}: {exc}")
        finally:
            run.done.set()
            if not run.killed:
                self._status(pod, run, init + main)

    @staticmethod
    def _spawn(c: Container) -> None:
        with open(c.log, "ab") as log:
            c.proc = subprocess.Popen(c.argv, env=c.env, cwd=c.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        c.started = now()

    @staticmethod
    def _finish(c: Container) -> None:
        assert c.proc is not None
        c.exit_code = c.proc.wait()
        c.finished = now()

    def _kill(self, run: _PodRun, grace: float) -> None:
        run.killed = True
        live = [c for c in run.containers if c.proc is not None and c.proc.poll() is None]
        for c in live:
            self._signal(c, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        end = time.monotonic() + grace
        for c in live:
            assert c.proc is not None
            try:
                c.proc.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(c, signal.SIGKILL)
                c.proc.wait(5)
        for c in run.containers:
            if c.cid and self.runtime is not None:
                self.runtime.delete(c.cid)

    def _signal(self, c: Container, sig: int) -> None:
        """A process group is signalled; a container through runc (killing runc itself would orphan it)."""
        if c.cid and self.runtime is not None and self.runtime.kill(c.cid, signal.Signals(sig).name[3:]):
            return
        if c.proc is not None:  # a process, or runc before its container exists
            with_group(c.proc, sig)

    def _status(self, pod: dict, run: _PodRun, containers: list[Container], failed_to_start: str = "") -> None:
        try:
            self.api.merge_patch(f"/api/v1/namespaces/{run.namespace}/pods/{run.name}/status",
                                 pod_status(pod, containers, failed_to_start))  # fmt: skip
        except ApiError as exc:
            if exc.status != 404:
                self.errors.append(f"pod {run.namespace}/{run.name} status: {exc}")


def with_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
