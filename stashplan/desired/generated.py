"""Objects stashplan generates as Stash and KubeDB would: the AppBinding KubeDB creates for a database object,
and the Repository and BackupConfiguration of auto-backup (a BackupBlueprint named by an AppBinding's
`stash.appscode.com/backup-blueprint` annotation, its variables substituted). Pure: dicts in, dicts out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stashplan.api import kubedb
from stashplan.api.loading import validate_objects
from stashplan.desired.tasks import substitute
from stashplan.errors import ManifestError
from stashplan.kinds import identity
from stashplan.objects import is_managed, k8s_name

BLUEPRINT_ANNOTATION = "stash.appscode.com/backup-blueprint"
SCHEDULE_ANNOTATION = "stash.appscode.com/schedule"
PARAMS_PREFIX = "params.stash.appscode.com/"
AUTO_BACKUP_LABEL = "stash.appscode.com/auto-backup-blueprint"  # on what auto-backup generated: the blueprint
# BackupConfiguration fields a blueprint carries over as they are (after substitution).
_CONFIG_FIELDS = ("retentionPolicy", "runtimeSettings", "tempDir", "interimVolumeTemplate", "hooks",
                  "backupHistoryLimit", "timeOut", "retryConfig")


@dataclass
class Generated:
    """Generated objects (validated, applied like manifests) with why each exists, notes for users, refusals."""

    objects: list[dict] = field(default_factory=list)
    reasons: dict[tuple[str, str, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def add(self, obj: dict, reason: str) -> None:
        """Validate a generated object like a manifest (defaults, refusals) and keep it unless refused."""
        refused: list[str] = []
        try:
            valid = validate_objects([(reason, obj)], refused)
        except ManifestError as exc:
            self.refusals += exc.problems
            return
        self.refusals += refused
        for made in valid:
            self.objects.append(made)
            self.reasons[identity(made)] = reason


def blueprint_inputs(appbinding: dict) -> dict[str, str]:
    """The variables Stash resolves a BackupBlueprint with for an AppBinding target."""
    meta, spec = appbinding["metadata"], appbinding.get("spec") or {}
    app_type = str(spec.get("type") or "")
    group, _, resource = app_type.rpartition("/")
    return {
        "TARGET_API_VERSION": str(appbinding.get("apiVersion") or "appcatalog.appscode.com/v1alpha1"),
        "TARGET_KIND": "appbinding",
        "TARGET_NAME": str(meta["name"]),
        "TARGET_NAMESPACE": str(meta.get("namespace") or "default"),
        "TARGET_APP_VERSION": str(spec.get("version") or ""),
        "TARGET_APP_GROUP": group,
        "TARGET_APP_RESOURCE": resource,
        "TARGET_APP_TYPE": app_type,
    }


def auto_backup(appbinding: dict, blueprint: dict) -> list[dict]:
    """The Repository and BackupConfiguration Stash generates: `app-<name>` in the target's namespace, or
    `<target-namespace>-app-<name>` in the blueprint's backupNamespace (Repository in repoNamespace if set)."""
    meta = appbinding["metadata"]
    inputs = blueprint_inputs(appbinding)
    spec = substitute(blueprint.get("spec") or {}, inputs)
    target_ns = inputs["TARGET_NAMESPACE"]
    backup_ns = spec.get("backupNamespace") or target_ns
    repo_ns = spec.get("repoNamespace") or backup_ns
    name = k8s_name("app-" if backup_ns == target_ns else f"{target_ns}-app-", str(meta["name"]))
    labels = {AUTO_BACKUP_LABEL: str(blueprint["metadata"]["name"])}
    repo_spec = {k: spec[k] for k in ("backend", "wipeOut", "usagePolicy") if spec.get(k) is not None}
    repository = {"apiVersion": "stash.appscode.com/v1alpha1", "kind": "Repository",
                  "metadata": {"name": name, "namespace": repo_ns, "labels": labels}, "spec": repo_spec}
    annotations = meta.get("annotations") or {}
    task = dict(spec.get("task") or {})
    params = {p["name"]: p.get("value", "") for p in task.get("params") or [] if isinstance(p, dict)}
    params.update({k[len(PARAMS_PREFIX):]: v for k, v in annotations.items() if k.startswith(PARAMS_PREFIX)})
    if params:
        task["params"] = [{"name": k, "value": v} for k, v in params.items()]
    ref = {"apiVersion": inputs["TARGET_API_VERSION"], "kind": "AppBinding", "name": str(meta["name"])}
    if target_ns != backup_ns:
        ref["namespace"] = target_ns
    config_spec: dict = {
        "repository": {"name": name, **({"namespace": repo_ns} if repo_ns != backup_ns else {})},
        "schedule": annotations.get(SCHEDULE_ANNOTATION) or spec.get("schedule"),
        "target": {"ref": ref},
        "task": task,
    }
    config_spec.update({k: spec[k] for k in _CONFIG_FIELDS if spec.get(k) is not None})
    config = {"apiVersion": "stash.appscode.com/v1beta1", "kind": "BackupConfiguration",
              "metadata": {"name": name, "namespace": backup_ns, "labels": labels}, "spec": config_spec}
    return [repository, config]


def generate(manifests: Sequence[dict], actual: Mapping[str, Sequence[dict]]) -> Generated:
    """What KubeDB and Stash's auto-backup would create from the manifests and what exists (manifests win)."""
    out = Generated()
    kinds = ("AppBinding", "BackupBlueprint")  # all generation looks at; a plan of thousands stays cheap
    known = {identity(o): o for kind in kinds for o in actual.get(kind, ())}
    known.update({identity(m): m for m in manifests if m.get("kind") in kinds})
    for db in (m for m in manifests if kubedb.is_kubedb(m)):
        ns, name = db["metadata"].get("namespace") or "default", db["metadata"]["name"]
        what = f"{db['kind']} {ns}/{name} (KubeDB) is not applied by stashplan"
        if ("AppBinding", ns, name) in known:
            out.notes.append(f"{what}; its AppBinding {ns}/{name} is given")
            continue
        appbinding = kubedb.appbinding_for(db)
        spec = appbinding["spec"]
        out.notes.append(f"{what}; planned the AppBinding KubeDB would create: service {name}.{ns}.svc, Secret "
                         f"{spec['secret']['name']}, type {spec['type']}, version {spec['version']}")
        out.add(appbinding, f"the AppBinding KubeDB creates for {db['kind']} {ns}/{name}")
        known[identity(appbinding)] = appbinding
    blueprints = {k[2]: o for k, o in known.items() if k[0] == "BackupBlueprint"}
    annotated = [(k, o) for k, o in known.items()
                 if k[0] == "AppBinding" and ((o.get("metadata") or {}).get("annotations") or {}).get(BLUEPRINT_ANNOTATION)]
    for key, appbinding in sorted(annotated, key=lambda e: e[0]):
        wanted = appbinding["metadata"]["annotations"][BLUEPRINT_ANNOTATION]
        where = f"AppBinding {key[1]}/{key[2]}: metadata.annotations[{BLUEPRINT_ANNOTATION}]"
        blueprint = blueprints.get(wanted)
        if blueprint is None:
            out.refusals.append(f"{where}: BackupBlueprint {wanted!r} does not exist; no auto-backup is planned")
            continue
        made = auto_backup(appbinding, blueprint)
        for obj in made:
            out.add(obj, f"auto-backup of AppBinding {key[1]}/{key[2]} (BackupBlueprint {wanted})")
        out.notes.append(f"{where}: auto-backup from BackupBlueprint {wanted}: Repository "
                         f"{made[0]['metadata']['namespace']}/{made[0]['metadata']['name']}, BackupConfiguration "
                         f"{made[1]['metadata']['namespace']}/{made[1]['metadata']['name']}")
    return out


def retired(actual: Mapping[str, Sequence[dict]], held: set[tuple[str, str, str]]) -> list[dict]:
    """Auto-backup BackupConfigurations no AppBinding asks for any more: Stash deletes them (and keeps the
    Repository, which holds the snapshots: stashplan lists it as an orphan)."""
    return [o for o in actual.get("BackupConfiguration", []) if is_managed(o) and identity(o) not in held
            and AUTO_BACKUP_LABEL in ((o.get("metadata") or {}).get("labels") or {})]
