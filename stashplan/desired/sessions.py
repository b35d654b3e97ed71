"""New BackupSession objects as Stash's invoker creates them (`stashplan trigger`). Pure."""

from __future__ import annotations

from stashplan.kinds import INVOKER_NAME, INVOKER_TYPE, MANAGED_LABEL, MANAGED_VALUE
from stashplan.objects import k8s_name


def new_backup_session(config: dict, unix_time: float) -> dict:
    """A BackupSession `<invoker>-<unix-ts>` with Stash's invoker and target labels."""
    meta, spec = config["metadata"], config["spec"]
    ref = (spec.get("target") or {}).get("ref") or {}
    labels = {
        MANAGED_LABEL: MANAGED_VALUE,
        INVOKER_TYPE: "BackupConfiguration",
        INVOKER_NAME: meta["name"],
        "stash.appscode.com/target-kind": ref.get("kind", ""),
        "stash.appscode.com/target-name": ref.get("name", ""),
        "stash.appscode.com/target-namespace": ref.get("namespace") or meta["namespace"],
    }
    return {
        "apiVersion": "stash.appscode.com/v1beta1",
        "kind": "BackupSession",
        "metadata": {
            "name": k8s_name("", f"{meta['name']}-{int(unix_time)}"),
            "namespace": meta["namespace"],
            "labels": labels,
        },
        "spec": {
            "invoker": {"apiGroup": "stash.appscode.com", "kind": "BackupConfiguration", "name": meta["name"]},
            "retryLeft": int(((spec.get("retryConfig") or {}).get("maxRetry")) or 0),
        },
    }
