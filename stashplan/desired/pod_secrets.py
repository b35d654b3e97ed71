"""Secrets reach a session's pod through its spec: one optional `envFrom` secretRef per Secret the session
needs (AppBinding secret, tlsSecret, secretTransforms sources, the Repository's storage Secret), all of the
invoker's namespace, so that the Job's ServiceAccount needs no Secret permission. Pure: dicts in, dicts out."""

from __future__ import annotations

import json

from stashplan.desired.pods import runs_transfer
from stashplan.secrets import REPOSITORY_ENV, SECRET_PREFIX, SECRETS_ENV


def session_secrets(appbinding: dict | None, repository: dict) -> list[str]:
    """The names of the Secrets (of the invoker's namespace) a transfer of this target and Repository reads."""
    spec = (appbinding or {}).get("spec") or {}
    names = [str((spec.get("secret") or {}).get("name") or ""), str((spec.get("tlsSecret") or {}).get("name") or "")]
    for transform in spec.get("secretTransforms") or []:
        body = (transform or {}).get("addKeysFrom") if isinstance(transform, dict) else None
        names.append(str(((body or {}).get("secretRef") or {}).get("name") or ""))
    names.append(str(((repository.get("spec") or {}).get("backend") or {}).get("storageSecretName") or ""))
    return sorted({n for n in names if n})


def env_secrets(container: dict) -> list[str]:
    """The Secrets a container's own env (secretKeyRef) and envFrom (secretRef) name."""
    refs = [((e.get("valueFrom") or {}).get("secretKeyRef") or {}) for e in container.get("env") or []]
    refs += [(e.get("secretRef") or {}) for e in container.get("envFrom") or []]
    return [str(r["name"]) for r in refs if r.get("name")]


def give_secrets(pod: dict, names: list[str], repository: dict, namespace: str) -> None:
    """Add to every container of `pod` that runs `stashplan transfer` the Secrets `names` (optional: a missing one
    is reported by the Job) and, for a Repository of another namespace, the Repository itself."""
    transfer = [c for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])] if runs_transfer(c)]
    # Secrets the user's runtimeSettings env puts in the environment are given too: the transfer masks their values.
    names = sorted({*names, *(n for c in transfer for n in env_secrets(c))})
    prefixes = {name: f"{SECRET_PREFIX}{i}_" for i, name in enumerate(names)}
    env = [{"name": SECRETS_ENV, "value": json.dumps(prefixes, sort_keys=True)}]
    if repository["metadata"].get("namespace", namespace) != namespace:
        shared = {"metadata": {k: repository["metadata"][k] for k in ("name", "namespace")},
                  "spec": repository.get("spec") or {}}
        env.append({"name": REPOSITORY_ENV, "value": json.dumps(shared, sort_keys=True)})
    for container in transfer:
        # First, so that the user's runtimeSettings env and envFrom come after and win.
        container["envFrom"] = [*({"prefix": prefix, "secretRef": {"name": name, "optional": True}}
                                  for name, prefix in prefixes.items()), *(container.get("envFrom") or [])]
        container["env"] = [*env, *(container.get("env") or [])]
