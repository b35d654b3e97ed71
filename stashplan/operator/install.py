"""`stashplan install`: the cluster manifests (Namespace, CRDs, RBAC, operator, Pushgateway) as one YAML stream.

Reads specs/deploy/*.yaml and the Stash CRDs, and rewrites namespace and image. Pure apart from reading files.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "specs" / "deploy"
CRD_DIR = Path(__file__).resolve().parents[2] / "specs" / "crds"
DEFAULT_NAMESPACE = "stashplan-system"
DEFAULT_IMAGE = "ghcr.io/stashplan/stashplan:0.1.0"
_ORDER = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
_CLUSTER_SCOPED = frozenset({"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"})


def _load_dir(folder: Path) -> list[dict]:
    docs: list[dict] = []
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def crds() -> list[dict]:
    """The CustomResourceDefinitions: generated files in specs/crds, else generated now by stashplan.api."""
    docs = _load_dir(CRD_DIR) if CRD_DIR.is_dir() else []
    if not docs:
        from stashplan.api import crd_manifests

        docs = crd_manifests()
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


def deploy_manifests(namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE) -> list[dict]:
    """specs/deploy's objects (without CRDs) moved to `namespace` and running `image`."""
    if not namespace or not image:
        raise ValueError("install: --namespace and --image must not be empty")
    out: list[dict] = []
    for doc in _load_dir(DEPLOY_DIR):
        obj = copy.deepcopy(doc)
        meta = obj.setdefault("metadata", {})
        kind = obj.get("kind")
        if kind == "Namespace":
            meta["name"] = namespace
        elif kind not in _CLUSTER_SCOPED:
            meta["namespace"] = namespace
        for subject in obj.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
        if kind == "Deployment" and meta.get("name") == "stashplan":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
                for env in container.get("env") or []:
                    if env.get("name") == "PROMETHEUS_PUSHGATEWAY_URL":
                        env["value"] = f"http://stashplan-pushgateway.{namespace}.svc:9091"
                    elif env.get("name") == "STASHPLAN_IMAGE":  # the image of the Jobs it creates
                        env["value"] = image
        out.append(obj)
    return out


def install_objects(namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE) -> list[dict]:
    """Everything `kubectl apply` needs, ordered so that each object's dependencies come first."""
    objs = crds() + deploy_manifests(namespace, image)

    def rank(obj: dict) -> int:
        kind = obj.get("kind", "")
        return _ORDER.index(kind) if kind in _ORDER else len(_ORDER)

    return sorted(objs, key=rank)


def render_install(namespace: str, image: str) -> str:
    """The install manifests as a multi-document YAML stream (`stashplan install | kubectl apply -f -`)."""
    docs = install_objects(namespace, image)
    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)
