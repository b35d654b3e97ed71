"""`stashplan install`: the cluster manifests (Namespace, CRDs, RBAC, operator, Pushgateway) as one YAML stream.

Reads the shipped specs/deploy/*.yaml and specs/crds (stashplan.packaged), refuses an installation that lacks
any of them, and rewrites namespace and image. Pure apart from reading files.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from stashplan import DEFAULT_IMAGE
from stashplan.errors import StashplanError
from stashplan.packaged import specs_dir

DEFAULT_NAMESPACE = "stashplan-system"
DEPLOY_FILES = ("namespace.yaml", "operator.yaml", "pushgateway.yaml", "rbac.yaml")  # each must be there
_ORDER = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
_CLUSTER_SCOPED = frozenset({"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"})


def _load(path: Path) -> list[dict]:
    if not path.is_file():
        raise StashplanError(f"install: {path.name} is missing from {path.parent} (a broken installation: reinstall "
                             "stashplan)")
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    if not docs:
        raise StashplanError(f"install: {path} holds no object")
    return docs


def crds(folder: Path | None = None) -> list[dict]:
    """The CustomResourceDefinitions shipped in specs/crds (`folder`): one file for each Stash kind."""
    from stashplan.api.crds import CRD_KINDS
    from stashplan.kinds import KINDS

    where = folder or specs_dir("crds")
    out: list[dict] = []
    for kind in CRD_KINDS:
        name = f"{KINDS[kind].plural}.{KINDS[kind].group}"
        out.extend(d for d in _load(where / f"{name}.yaml") if d.get("kind") == "CustomResourceDefinition")
    return out


def deploy_manifests(namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE,
                     folder: Path | None = None) -> list[dict]:
    """specs/deploy's objects (`folder`; without CRDs) moved to `namespace` and running `image`."""
    if not namespace or not image:
        raise ValueError("install: --namespace and --image must not be empty")
    where = folder or specs_dir("deploy")
    out: list[dict] = []
    files = sorted({*DEPLOY_FILES, *(p.name for p in where.glob("*.yaml"))})  # the required ones and any added
    for doc in (d for name in files for d in _load(where / name)):
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
    if not any(o.get("kind") == "Deployment" and o["metadata"].get("name") == "stashplan" for o in out):
        raise StashplanError(f"install: {where / 'operator.yaml'} holds no Deployment named stashplan")
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
