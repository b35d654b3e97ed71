"""API benchmark: load + validate N BackupConfigurations from YAML files, and resolve + build N backup Jobs.

Env: BENCH_CONFIGS (default 10000). Prints seconds, objects per second and peak traced memory per stage
(seconds from an untraced run; tracemalloc slows Python code several times over).
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import yaml

from stashplan.api import builtin_addons, load_paths, validate_objects
from stashplan.desired.tasks import backup_inputs, build_pod_spec, resolve_task

N = int(os.environ.get("BENCH_CONFIGS", "10000"))
REPO = {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
        "metadata": {"name": "repo", "namespace": "bench"},
        "spec": {"backend": {"s3": {"endpoint": "http://127.0.0.1:9000", "bucket": "b"}, "storageSecretName": "s"}}}
BINDING = {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
           "metadata": {"name": "db", "namespace": "bench"}, "spec": {"type": "kubedb.com/postgres"}}


def config(i: int) -> dict:
    return {
        "apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
        "metadata": {"name": f"db-{i:05d}", "namespace": "bench"},
        "spec": {"schedule": f"{i % 60} 3 * * *", "task": {"name": "postgres-backup-11.9",
                                                           "params": [{"name": "args", "value": "--clean"}]},
                 "repository": {"name": "repo"}, "timeOut": "1h30m",
                 "target": {"ref": {"apiVersion": "appcatalog.appscode.com/v1alpha1", "kind": "AppBinding",
                                    "name": "db"}},
                 "retentionPolicy": {"name": "keep", "keepLast": 5, "prune": True}},
    }


def measure(label: str, fn: Callable[[], int]) -> None:
    """Time one stage (no tracing overhead), then run it again under tracemalloc for its peak memory."""
    start = time.perf_counter()
    count = fn()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<44} {count:>7} {seconds:>8.2f} {count / seconds:>12.0f} {peak / 2**20:>10.1f}")


def main() -> None:
    configs = [config(i) for i in range(N)]
    addons = builtin_addons()
    tasks = {o["metadata"]["name"]: o for o in addons if o["kind"] == "Task"}
    functions = {o["metadata"]["name"]: o for o in addons if o["kind"] == "Function"}
    print(f"{'stage':<44} {'objects':>7} {'seconds':>8} {'objects/s':>12} {'peak MiB':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for chunk in range(0, N, 1000):  # 1000 documents per file, as a big repo of manifests would be
            text = yaml.safe_dump_all([REPO, BINDING] if chunk == 0 else [], sort_keys=False)
            text += "---\n" + yaml.safe_dump_all(configs[chunk:chunk + 1000], sort_keys=False)
            (folder / f"configs-{chunk:05d}.yaml").write_text(text)
        measure("load_paths (YAML parse + validate)", lambda: len(load_paths([folder])))
    measure("validate_objects (in-memory dicts)", lambda: len(validate_objects([("mem", c) for c in configs])))
    valid = validate_objects([("mem", c) for c in configs])

    def jobs() -> int:
        for cfg in valid:
            resolved = resolve_task("backup", cfg["spec"]["task"], BINDING, tasks)
            session = {"metadata": {"name": f"{cfg['metadata']['name']}-1700000000", "namespace": "bench"}}
            inputs = backup_inputs(cfg, REPO, BINDING, session)
            build_pod_spec(tasks[resolved.name], functions, inputs, resolved.params)
        return len(valid)

    measure("resolve_task + inputs + build_pod_spec", jobs)


if __name__ == "__main__":
    main()
