"""A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver (self-signed CA, client
certificates, ServiceAccount token signing, RBAC) and kube-controller-manager, built by tests/kube/build.sh.

`python -m tests.kube.controlplane` starts it, prints the component versions and the admin kubeconfig,
and tears it down (at once with --check, else on Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.kube.pki import ClusterPKI, Pair

HERE = Path(__file__).resolve().parent
CONTROLLERS = (
    "cronjob-controller", "job-controller", "garbage-collector-controller", "namespace-controller",
    "serviceaccount-token-controller", "serviceaccount-controller",
    "root-ca-certificate-publisher-controller",  # kube-root-ca.crt in every namespace: the token volume's CA
)  # fmt: skip


def binaries() -> Path:
    """The folder holding etcd, kube-apiserver and kube-controller-manager (built on first use)."""
    if env := os.environ.get("STASHPLAN_KUBE_BIN"):
        return Path(env)
    done = subprocess.run(["bash", str(HERE / "build.sh")], check=True, stdout=subprocess.PIPE, text=True)
    return Path(done.stdout.strip().splitlines()[-1])


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the process that started it dies (Linux prctl)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver (+ kube-controller-manager once `start_controllers` is called)."""

    workdir: Path
    bin_dir: Path
    pki: ClusterPKI
    port: int = 0
    sa_key: Pair | None = None
    procs: list[_Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    def _spawn(self, name: str, argv: list[str]) -> _Proc:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, start_new_session=True, preexec_fn=_die_with_parent)  # fmt: skip
        proc = _Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def _wait(self, proc: _Proc, ready: str, timeout: float) -> None:
        """Poll `ready` (an URL path on the component) until it answers 200 or the process exits."""
        end = time.monotonic() + timeout
        last = ""
        while time.monotonic() < end:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            try:
                with self._open(ready, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"{proc.name} not ready after {timeout:.0f}s ({last}):\n{proc.tail()}")

    def _open(self, url: str, timeout: float = 10) -> urllib.request._UrlopenRet:  # type: ignore[name-defined]
        ctx = None
        if url.startswith("https:"):
            ctx = ssl.create_default_context(cafile=str(self.pki.ca))
            admin = self.workdir / "pki" / "admin"
            ctx.load_cert_chain(f"{admin}.crt", f"{admin}.key")
        return urllib.request.urlopen(url, timeout=timeout, context=ctx)

    def start(self, timeout: float = 120) -> None:
        etcd_port, peer_port = free_port(), free_port()
        etcd = self._spawn("etcd", [
            str(self.bin_dir / "etcd"), "--name=test", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync", "--log-level=warn",
        ])  # fmt: skip
        self._wait(etcd, f"http://127.0.0.1:{etcd_port}/health", timeout)
        serving = self.pki.server("apiserver")
        self.pki.client("admin", "stashplan-test-admin", "system:masters")
        self.sa_key = self.pki.signing_key("service-account")
        self.port = free_port()
        apiserver = self._spawn("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={self.pki.ca}",
            f"--service-account-issuer={self.url}",
            f"--service-account-key-file={self.sa_key.cert}",
            f"--service-account-signing-key-file={self.sa_key.key}",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--authorization-mode=Node,RBAC", "--endpoint-reconciler-type=none",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            "--profiling=false", "--v=1",
        ])  # fmt: skip
        self._wait(apiserver, f"{self.url}/readyz", timeout)
        self._kubeconfig(self.admin_kubeconfig, "admin")

    def start_controllers(self, timeout: float = 60) -> None:
        """kube-controller-manager with its own identity, one ServiceAccount per controller."""
        assert self.sa_key is not None, "start() first"
        self.pki.client("controller-manager", "system:kube-controller-manager")
        kubeconfig = self._kubeconfig(self.workdir / "controller-manager.kubeconfig", "controller-manager")
        health, serving = free_port(), self.pki.server("controller-manager-serving")
        kcm = self._spawn("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={health}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez",
            f"--controllers={','.join(CONTROLLERS)}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.sa_key.key}",
            f"--root-ca-file={self.pki.ca}",
            "--leader-elect=false", "--profiling=false", "--v=1",
        ])  # fmt: skip
        self._wait(kcm, f"https://127.0.0.1:{health}/healthz", timeout)

    def _kubeconfig(self, path: Path, user: str) -> Path:
        pki = self.workdir / "pki"
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url, "certificate-authority": str(self.pki.ca)}}],
            "users": [{"name": user, "user": {"client-certificate": str(pki / f"{user}.crt"),
                                              "client-key": str(pki / f"{user}.key")}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
        }  # fmt: skip
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
        return path

    def server_version(self) -> str:
        with self._open(f"{self.url}/version") as resp:
            return str(json.load(resp)["gitVersion"])

    def versions(self) -> dict[str, str]:
        """Each binary's own --version line, and what the running API server reports."""
        out = {}
        for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
            done = subprocess.run([str(self.bin_dir / name), "--version"], capture_output=True, text=True)
            out[name] = (done.stdout or done.stderr).strip().splitlines()[0]
        out["server /version"] = self.server_version()
        return out

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


@contextlib.contextmanager
def running(workdir: Path, *, controllers: bool = True) -> Iterator[ControlPlane]:
    """A started control plane in `workdir`, stopped (every process it started) on exit."""
    plane = ControlPlane(workdir, binaries(), ClusterPKI(workdir / "pki"))
    try:
        plane.start()
        if controllers:
            plane.start_controllers()
        yield plane
    finally:
        plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="stop right after printing the versions")
    parser.add_argument("--workdir", type=Path, help="keep state and logs here (default: a temp folder)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kube-")))
        started = time.monotonic()
        plane = stack.enter_context(running(workdir))
        for name, version in plane.versions().items():
            print(f"{name}: {version}")
        print(f"control plane ready in {time.monotonic() - started:.1f}s at {plane.url}")
        print(f"KUBECONFIG={plane.admin_kubeconfig}")
        if not args.check:
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    print("control plane stopped")


if __name__ == "__main__":
    sys.exit(main())
