"""A Pod's container as a container of the image, for the test kubelet's image mode: the image's entry point,
environment and user under the Pod's, its volumes (emptyDir, hostPath, Secret, ConfigMap, projected: the
ServiceAccount token, CA and namespace the API server mounts at SA_PATH) as folders, an /etc/hosts naming it
and the node's /etc/resolv.conf."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.kube.image import Image
from tests.kube.runc import Mount, Process

SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
Lookup = Callable[[str, str, "bool | None"], dict[str, str]]  # (namespace, name, optional) -> data


class ContainerError(Exception):
    """A volume, mount or user the test kubelet cannot give: the Pod fails to start, naming it."""


class NotReady(Exception):
    """A Secret or ConfigMap a volume needs is not there yet: the Pod stays Pending and is tried again."""


@dataclass(frozen=True)
class Sources:
    """Where volume contents come from: Secrets, ConfigMaps, the Pod's ServiceAccount token, its fields."""

    secret: Lookup
    configmap: Lookup
    token: Callable[[], str]
    fields: dict[str, str]


def base_env(image: Image, pod: dict, api_port: int) -> dict[str, str]:
    """What a container's environment starts from before the Pod's env: the image's, the in-cluster config."""
    return {**image.env, "HOSTNAME": pod["metadata"]["name"], "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(api_port)}  # fmt: skip


def command(image: Image, c: dict) -> list[str]:
    """Kubernetes' rule: `command` replaces the entry point (and the image's Cmd); `args` replaces the Cmd."""
    if c.get("command"):
        return [*c["command"], *(c.get("args") or [])]
    return [*image.entrypoint, *(c["args"] if c.get("args") is not None else image.cmd)]


def process(image: Image, pod: dict, c: dict, argv: list[str], env: dict[str, str]) -> Process:
    """The container's process: runAsUser/runAsGroup (container over pod) else the image's user; fsGroup and
    supplementalGroups as extra groups. runAsNonRoot with user 0 refuses, as the kubelet does."""
    pod_sc, sc = pod["spec"].get("securityContext") or {}, c.get("securityContext") or {}
    merged = {**pod_sc, **sc}
    uid, gid = int(merged.get("runAsUser", image.user[0])), int(merged.get("runAsGroup", image.user[1]))
    if merged.get("runAsNonRoot") and uid == 0:
        raise ContainerError(f"container {c['name']}: runAsNonRoot and the image will run as root")
    groups = tuple(int(g) for g in [*([pod_sc["fsGroup"]] if "fsGroup" in pod_sc else []),
                                    *(pod_sc.get("supplementalGroups") or [])])  # fmt: skip
    return Process(argv, env, str(c.get("workingDir") or image.workdir), uid, gid, groups)


def volumes(pod: dict, folder: Path, sources: Sources) -> dict[str, Path]:
    """Every volume of the Pod as a host folder, by name (made once per Pod, shared by its containers)."""
    ns = pod["metadata"]["namespace"]
    out: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name, path = volume["name"], folder / "volumes" / volume["name"]
        if host := volume.get("hostPath"):
            path = Path(host["path"])
            if host.get("type") in (None, "", "DirectoryOrCreate"):
                path.mkdir(parents=True, exist_ok=True)
        elif any(k in volume for k in ("emptyDir", "ephemeral", "persistentVolumeClaim")):  # claims: a folder
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
        elif ref := volume.get("secret"):
            _files(path, sources.secret(ns, ref["secretName"], ref.get("optional")), ref, ref.get("defaultMode"))
        elif ref := volume.get("configMap"):
            _files(path, sources.configmap(ns, ref["name"], ref.get("optional")), ref, ref.get("defaultMode"))
        elif projected := volume.get("projected"):  # the API server's kube-api-access-* volume among others
            for source in projected.get("sources") or []:
                _project(path, ns, source, sources, projected.get("defaultMode"))
        else:
            raise ContainerError(f"volume {name}: {sorted(set(volume) - {'name'})} is not supported by the test kubelet")
        out[name] = path
    return out


def _project(path: Path, ns: str, source: dict, sources: Sources, mode: int | None) -> None:
    if ref := source.get("serviceAccountToken"):
        _files(path, {"token": sources.token()}, {"items": [{"key": "token", "path": ref["path"]}]}, mode)
    elif ref := source.get("secret"):
        _files(path, sources.secret(ns, ref["name"], ref.get("optional")), ref, mode)
    elif ref := source.get("configMap"):
        _files(path, sources.configmap(ns, ref["name"], ref.get("optional")), ref, mode)
    elif ref := source.get("downwardAPI"):
        for item in ref.get("items") or []:
            field = (item.get("fieldRef") or {}).get("fieldPath", "")
            if field not in sources.fields:
                raise ContainerError(f"downwardAPI {item['path']}: {field or 'resourceFieldRef'} is not supported here")
            _files(path, {"v": sources.fields[field]}, {"items": [{"key": "v", "path": item["path"]}]}, mode)
    else:
        raise ContainerError(f"projected source {sorted(source)} is not supported by the test kubelet")


def _files(path: Path, data: dict[str, str], ref: dict, mode: int | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    items = ref.get("items") or [{"key": k, "path": k} for k in data]
    for item in items:
        if item["key"] not in data:
            raise ContainerError(f"volume key {item['key']!r} not found")
        target = path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[item["key"]])
        target.chmod(int(item.get("mode", 0o644 if mode is None else mode)))  # Kubernetes' default: 0644


def mounts(pod: dict, c: dict, volumes: dict[str, Path], folder: Path) -> list[Mount]:
    """The container's volumeMounts (subPath included; the API server's admission adds the ServiceAccount's
    token volume at SA_PATH), /etc/hosts and the node's /etc/resolv.conf, as a kubelet mounts them."""
    out = []
    for m in c.get("volumeMounts") or []:
        if m["name"] not in volumes:
            raise ContainerError(f"container {c['name']}: volumeMount {m['name']!r} names no volume")
        source = volumes[m["name"]] / m.get("subPath", "")
        out.append(Mount(source, m["mountPath"], bool(m.get("readOnly"))))
    hosts = folder / "etc-hosts"
    hosts.write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                     f"127.0.0.1\t{pod['metadata']['name']}\n")  # fmt: skip
    out.append(Mount(hosts, "/etc/hosts", readonly=True))
    out.append(Mount(Path("/etc/resolv.conf"), "/etc/resolv.conf", readonly=True))  # a kubelet's dnsPolicy Default
    return out
