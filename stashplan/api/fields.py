"""Every field of every kind stashplan serves: honoured (and which module reads it) or refused at plan time
(and why). The one list the coverage test walks the CRD schemas against and the README table is made from.

Paths are dotted from the object root; `[]` marks list items; a trailing `*` stands for every other key of a
free-form object. A refused field is refused only when set to something that would change behaviour
(`Rule.when`); the default (absent, empty, false) is always accepted. Other helpers move rules from REFUSED
to HONOURED as they land features (backends): whoever lands second updates this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def is_set(value: Any) -> bool:
    """Anything but absent, empty or false."""
    return value not in (None, False, "", [], {})


@dataclass(frozen=True)
class Rule:
    kind: str
    path: str
    what: str  # honoured: what stashplan does with it; refused: why not
    where: str = ""  # honoured: the module (repository path) that reads it; "" for refused and informational
    when: Callable[[Any], bool] = field(default=is_set, compare=False)  # refused: which values are refused


_BC, _RS, _BS = "BackupConfiguration", "RestoreSession", "BackupSession"
_TASKS = "stashplan/desired/tasks.py"
_INPUTS = "stashplan/api/inputs.py"
_CONTEXT = "stashplan/transfer/context.py"
_PODS = "stashplan/desired/pods.py"
_PHASES = "stashplan/desired/session_phases.py"
_WORLD = "stashplan/desired/world.py"
_BOUNDARIES = "stashplan/desired/boundaries.py"
_STORAGE = "providers/storage/__init__.py"
_DB = "providers/databases/base.py"
_ENDPOINT = "providers/databases/endpoint.py"
_GENERATED = "stashplan/desired/generated.py"
_PHYSICAL = "stashplan/transfer/physical.py"

# Pod and container keys of Stash's runtimeSettings (kmodules offshoot-api) that stashplan copies onto its pods.
RUNTIME_POD_KEYS = ("serviceAccountName", "nodeSelector", "affinity", "tolerations", "securityContext",
                    "imagePullSecrets", "priorityClassName", "priority", "automountServiceAccountToken", "nodeName",
                    "schedulerName", "readinessGates", "runtimeClassName", "enableServiceLinks",
                    "topologySpreadConstraints")
RUNTIME_CONTAINER_KEYS = ("resources", "env", "envFrom", "securityContext", "livenessProbe", "readinessProbe",
                          "lifecycle")
FUNCTION_RUNTIME_KEYS = ("env", "envFrom", "resources", "livenessProbe", "readinessProbe", "lifecycle",
                         "securityContext", "nice", "ionice")
_LOCAL = " (refused in local mode, where no kubelet or scheduler acts on it)"
_LOCAL_SECURITY = (" (locally the Job's process starts as runAsUser/runAsGroup with supplementalGroups, root needed to "
                   "switch; runAsNonRoot checked; other keys refused)")


def _invoker_rules(kind: str) -> list[Rule]:
    """What BackupConfiguration and RestoreSession share: task, target, repository, runtime, temp dir, hooks."""
    spec = "spec"
    _wal = ("" if kind != _BC else "; with Task postgres-basebackup-<v>, `walArchive: receive` adds a WAL receiver "
            "Deployment `<name>-wal-receive` (params `walSlot`, default stashplan_<name>; `walPartialInterval`, "
            "default 5 s; other values, or these params with another Task, refused)")
    rules = [
        Rule(kind, f"{spec}.task.name", "the Task (or built-in addon) the Job runs", _TASKS),
        Rule(kind, f"{spec}.task.params[].name", "Task params, over the AppBinding's addon params" + _wal, _TASKS),
        Rule(kind, f"{spec}.task.params[].value", "Task params, over the AppBinding's addon params" + _wal, _TASKS),
        Rule(kind, f"{spec}.target.ref.apiVersion", "TARGET_API_VERSION", _INPUTS),
        Rule(kind, f"{spec}.target.ref.kind", "AppBinding: the database to back up or restore", _WORLD),
        Rule(kind, f"{spec}.target.ref.name", "the AppBinding", _WORLD),
        Rule(kind, f"{spec}.target.ref.namespace", "the invoker's own namespace only: another one is refused at plan "
             "time and by the Job (a namespace reaches only its own objects; Stash's cross-namespace targets are not "
             "supported)", _BOUNDARIES),
        Rule(kind, f"{spec}.target.alias", "the snapshot host (HOSTNAME, default host-0)", _INPUTS),
        Rule(kind, f"{spec}.target.replicas", "TARGET_APP_REPLICAS", _INPUTS),
        Rule(kind, f"{spec}.repository.name", "the Repository", _WORLD),
        Rule(kind, f"{spec}.repository.namespace", "a Repository of another namespace (its usagePolicy decides; its "
             "storageSecretName is the Secret of that name in the invoker's namespace)", _WORLD),
        Rule(kind, f"{spec}.timeOut", "the session deadline (Job activeDeadlineSeconds, session Failed)", _PHASES),
        Rule(kind, f"{spec}.tempDir.disableCaching", "ENABLE_CACHE; stashplan's repository keeps no local cache",
             _INPUTS),
    ]
    for key in RUNTIME_POD_KEYS:
        local = "" if key == "serviceAccountName" else _LOCAL_SECURITY if key == "securityContext" else _LOCAL
        rules.append(Rule(kind, f"{spec}.runtimeSettings.pod.{key}", "copied onto the trigger and Job pods" + local,
                          _PODS))
    for key in ("podLabels", "podAnnotations"):
        rules.append(Rule(kind, f"{spec}.runtimeSettings.pod.{key}", "the Job pod's labels/annotations", _PODS))
    for key in RUNTIME_CONTAINER_KEYS:
        local = {"env": " (locally: value and secretKeyRef)", "securityContext": _LOCAL_SECURITY}.get(key, _LOCAL)
        rules.append(Rule(kind, f"{spec}.runtimeSettings.container.{key}", "copied onto the Job's container" + local,
                          _PODS))
    for key in ("nice", "ionice"):
        rules.append(Rule(kind, f"{spec}.runtimeSettings.container.{key}", "NICE_ADJUSTMENT / IONICE_CLASS(_DATA) "
                          "in the Job's env; the transfer applies them to itself, its dump or restore client and "
                          "its upload", _PODS))
    rules += [
        Rule(kind, f"{spec}.tempDir.medium", "the Job's /tmp emptyDir" + _LOCAL, _PODS),
        Rule(kind, f"{spec}.tempDir.sizeLimit", "the Job's /tmp emptyDir" + _LOCAL, _PODS),
        Rule(kind, f"{spec}.interimVolumeTemplate", "a volume claimed for the Job's pod at /stash-interim-volume "
             "(INTERIM_DATA_DIR)" + _LOCAL, _PODS),
    ]
    return rules


_HOOK_RUN = "stashplan/transfer/hooks.py"


def _hook_rules(kind: str, pre: str, post: str) -> list[Rule]:
    """Stash's hooks (prober Handlers), run by the transfer: checked in stashplan/api/models/hooks.py."""
    rules: list[Rule] = []
    for hook in (pre, post):
        base = f"spec.hooks.{hook}"
        rules += [
            Rule(kind, f"{base}.exec.command", "run as a process in the Job (this machine in local mode), "
                 "under a timeout", _HOOK_RUN),
            *(Rule(kind, f"{base}.{action}.{k}", "the request the hook makes", _HOOK_RUN)
              for action in ("httpGet", "httpPost") for k in ("path", "port", "host", "scheme")),
            *(Rule(kind, f"{base}.{action}.httpHeaders[].{k}", "request headers", _HOOK_RUN)
              for action in ("httpGet", "httpPost") for k in ("name", "value")),
            Rule(kind, f"{base}.httpPost.body", "the request body (summary templates rendered)", _HOOK_RUN),
            Rule(kind, f"{base}.httpPost.form[].key", "a urlencoded form body", _HOOK_RUN),
            Rule(kind, f"{base}.httpPost.form[].values", "a urlencoded form body", _HOOK_RUN),
            Rule(kind, f"{base}.tcpSocket.port", "the port that must accept a connection", _HOOK_RUN),
            Rule(kind, f"{base}.tcpSocket.host", "the host (default: the AppBinding's)", _HOOK_RUN),
            Rule(kind, f"{base}.containerName", "local mode: this machine is the pod; refused in kube mode (hooks "
                 "run in the Job, not the database's pod)", "stashplan/api/modes.py"),
        ]
    rules.append(Rule(kind, f"spec.hooks.{post}.executionPolicy", "when the post hook runs, as Stash decides",
                      _HOOK_RUN))
    return rules


HONOURED: tuple[Rule, ...] = (
    # Repository
    Rule("Repository", "spec.backend.storageSecretName", "RESTIC_PASSWORD and backend credentials", _CONTEXT),
    Rule("Repository", "spec.backend.local.mountPath", "the repository directory", _STORAGE),
    Rule("Repository", "spec.backend.local.subPath", "a sub-directory of mountPath", _STORAGE),
    Rule("Repository", "spec.backend.local.*", "the volume (hostPath, persistentVolumeClaim, nfs ...) mounted "
         "into the Job pod at mountPath; local mode uses the directory at mountPath (emptyDir and read-only "
         "volumes refused)", _PODS),
    Rule("Repository", "spec.backend.s3.endpoint", "the S3 endpoint", _STORAGE),
    Rule("Repository", "spec.backend.s3.bucket", "the bucket", _STORAGE),
    Rule("Repository", "spec.backend.s3.prefix", "the key prefix", _STORAGE),
    Rule("Repository", "spec.backend.s3.region", "the signing region", _STORAGE),
    Rule("Repository", "spec.backend.s3.insecureTLS", "skip TLS verification", _STORAGE),
    Rule("Repository", "spec.backend.gcs.bucket", "the GCS bucket", "providers/storage/gcs.py"),
    Rule("Repository", "spec.backend.gcs.prefix", "the object name prefix", "providers/storage/gcs.py"),
    Rule("Repository", "spec.backend.gcs.maxConnections", "the HTTP connection pool size",
         "providers/storage/gcs.py"),
    Rule("Repository", "spec.backend.azure.container", "the blob container", "providers/storage/azure.py"),
    Rule("Repository", "spec.backend.azure.prefix", "the blob name prefix", "providers/storage/azure.py"),
    Rule("Repository", "spec.backend.azure.maxConnections", "parallel block transfers per blob",
         "providers/storage/azure.py"),
    Rule("Repository", "spec.backend.swift.container", "the Swift container (created if missing)",
         "providers/storage/swift.py"),
    Rule("Repository", "spec.backend.swift.prefix", "the object name prefix", "providers/storage/swift.py"),
    Rule("Repository", "spec.backend.b2.bucket", "the B2 bucket", "providers/storage/b2.py"),
    Rule("Repository", "spec.backend.b2.prefix", "the file name prefix", "providers/storage/b2.py"),
    Rule("Repository", "spec.backend.b2.maxConnections", "b2sdk's upload workers", "providers/storage/b2.py"),
    Rule("Repository", "spec.backend.rest.url", "the rest-server repository URL (REST protocol v2)",
         "providers/storage/rest.py"),
    Rule("Repository", "spec.usagePolicy.allowedNamespaces.from", "which namespaces may use it",
         "stashplan/desired/usage.py"),
    Rule("Repository", "spec.usagePolicy.allowedNamespaces.selector", "namespaces by label",
         "stashplan/desired/usage.py"),
    # BackupConfiguration
    *_invoker_rules(_BC),
    *_hook_rules(_BC, "preBackup", "postBackup"),
    Rule(_BC, "spec.schedule", "the trigger CronJob's schedule", "stashplan/desired/compute.py"),
    Rule(_BC, "spec.paused", "suspends the trigger CronJob", "stashplan/desired/compute.py"),
    Rule(_BC, "spec.driver", "Restic (the only driver stashplan runs)", "stashplan/api/fields.py"),
    Rule(_BC, "spec.backupHistoryLimit", "completed sessions kept", _PHASES),
    Rule(_BC, "spec.retryConfig.maxRetry", "retries of a failed session", "stashplan/desired/sessions.py"),
    Rule(_BC, "spec.retryConfig.delay", "wait before a retry", _PHASES),
    Rule(_BC, "spec.retentionPolicy.name", "recorded in status", _CONTEXT),
    *(Rule(_BC, f"spec.retentionPolicy.{k}", "restic forget policy after each backup", _CONTEXT)
      for k in ("keepLast", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly", "keepTags",
                "prune", "dryRun")),
    # BackupSession
    Rule(_BS, "spec.invoker.apiGroup", "stash.appscode.com", "stashplan/desired/sessions.py"),
    Rule(_BS, "spec.invoker.kind", "BackupConfiguration", "stashplan/desired/sessions.py"),
    Rule(_BS, "spec.invoker.name", "the BackupConfiguration run", _PHASES),
    Rule(_BS, "spec.retryLeft", "retries left", _PHASES),
    # RestoreSession
    *_invoker_rules(_RS),
    *_hook_rules(_RS, "preRestore", "postRestore"),
    Rule(_RS, "spec.driver", "Restic (the only driver stashplan runs)", "stashplan/api/fields.py"),
    *(Rule(_RS, f"{base}[].{k}", "which snapshot of which host to restore", _CONTEXT)
      for base in ("spec.target.rules", "spec.rules") for k in ("targetHosts", "sourceHost", "snapshots")),
    Rule(_RS, "spec.pitr.targetTime", "PostgreSQL point-in-time recovery (Task postgres-pitr-restore-<v>): the "
         "data directory written (local mode: param pgdata; a cluster: in the claim named by param claimName) is "
         "recovered to this recovery_target_time by the Job before it Succeeds (local mode; a cluster's Job writes "
         "it set up to recover: param recover \"false\"); KubeStash's "
         "spec.dataSource.pitr.targetTime (Stash v1beta1 has no such field)", _PHYSICAL),
    Rule(_RS, "spec.pitr.targetLSN", "stashplan extension: recovery_target_lsn instead of a time", _PHYSICAL),
    Rule(_RS, "spec.pitr.targetName", "stashplan extension: recovery_target_name (a pg_create_restore_point)",
         _PHYSICAL),
    # Task and Function
    Rule("Task", "spec.steps[].name", "the Function of each step", _TASKS),
    Rule("Task", "spec.steps[].params[].name", "step params", _TASKS),
    Rule("Task", "spec.steps[].params[].value", "step params", _TASKS),
    Rule("Task", "spec.volumes", "the Job pod's volumes", _TASKS),
    *(Rule("Function", f"spec.{k}", "the container", _TASKS)
      for k in ("image", "command", "args", "workingDir", "ports", "volumeMounts", "volumeDevices")),
    *(Rule("Function", f"spec.runtimeSettings.{k}", "the container", _TASKS) for k in FUNCTION_RUNTIME_KEYS),
    # AppBinding
    Rule("AppBinding", "spec.type", "which built-in addon (database) when no Task is named", _TASKS),
    Rule("AppBinding", "spec.version", "TARGET_APP_VERSION; the built-in addon's version, and a backup of a "
         "PostgreSQL newer than the newest pg_dump is refused", _INPUTS),
    Rule("AppBinding", "spec.parameters", "stash.addon backupTask/restoreTask and their params", _TASKS),
    Rule("AppBinding", "spec.clientConfig.url", "where the database is: scheme://host:port/db?query or KubeDB's "
         "tcp(host:port)/db; with service set too (as KubeDB writes), the URL gives the database and query", _ENDPOINT),
    *(Rule("AppBinding", f"spec.clientConfig.service.{k}", "where the database is (<name>.<namespace>.svc); with "
           "url set too, the service gives host and port, as Stash's addons read it", _ENDPOINT)
      for k in ("scheme", "namespace", "name", "port")),
    *(Rule("AppBinding", f"spec.clientConfig.service.{k}", "the database and query when url does not give them",
           _ENDPOINT) for k in ("path", "query")),
    Rule("AppBinding", "spec.clientConfig.caBundle", "the CA the client verifies the server with", _DB),
    Rule("AppBinding", "spec.secret.name", "the credentials Secret", _CONTEXT),
    Rule("AppBinding", "spec.secretTransforms", "renameKey, addKey, addKeysFrom, removeKey on the credentials",
         _CONTEXT),
    Rule("AppBinding", "spec.tlsSecret.name", "the client certificate Secret", _CONTEXT),
    # BackupBlueprint: copied, variables substituted, into the Repository and BackupConfiguration it generates
    # for each annotated AppBinding; those are then checked like any other (refused fields refused there).
    *(Rule("BackupBlueprint", f"spec.{k}", "copied into the generated Repository", _GENERATED)
      for k in ("backend", "wipeOut", "usagePolicy")),
    Rule("BackupBlueprint", "spec.backupNamespace", "where the BackupConfiguration (`<target-ns>-app-<name>`) goes; "
         "one outside its target's namespace is refused at plan time",
         _GENERATED),
    Rule("BackupBlueprint", "spec.repoNamespace", "where the generated Repository goes", _GENERATED),
    Rule("BackupBlueprint", "spec.schedule", "the schedule (annotation stash.appscode.com/schedule wins)",
         _GENERATED),
    Rule("BackupBlueprint", "spec.task", "the Task; params.stash.appscode.com/<name> annotations add params",
         _GENERATED),
    *(Rule("BackupBlueprint", f"spec.{k}", "copied into the generated BackupConfiguration", _GENERATED)
      for k in ("retentionPolicy", "runtimeSettings", "tempDir", "interimVolumeTemplate", "hooks",
                "backupHistoryLimit", "timeOut", "retryConfig")),
)

INFORMATIONAL: tuple[Rule, ...] = (
    Rule("AppBinding", "spec.appRef", "KubeDB's link to its database object; nothing a backup does depends on it"),
    *(Rule("AppBinding", f"spec.{ref}.{k}", "always a core Secret") for ref in ("secret", "tlsSecret")
      for k in ("apiGroup", "kind")),
)

_WORKLOAD = "only workload and volume targets (Stash's sidecar) read it; a database is dumped whole"


def _invoker_refusals(kind: str) -> list[Rule]:
    rules = [
        Rule(kind, "spec.target.ref.kind", "only AppBinding (database) targets run in stashplan; workload and "
             "volume targets need Stash's sidecar", when=lambda v: v not in (None, "AppBinding")),
        Rule(kind, "spec.target.volumeMounts", _WORKLOAD),
        Rule(kind, "spec.target.args", _WORKLOAD),
        Rule(kind, "spec.driver", "the VolumeSnapshotter driver takes CSI snapshots; stashplan only runs "
             "Restic-style dumps", when=lambda v: v not in (None, "Restic")),
        Rule(kind, "spec.runtimeSettings.pod.serviceAccountAnnotations", "stashplan makes no ServiceAccount per "
             "configuration (Jobs run as stashplan-job or your serviceAccountName); annotate your own ServiceAccount"),
    ]
    return rules


REFUSED: tuple[Rule, ...] = (
    Rule("Repository", "spec.backend.local.emptyDir", "nothing in an emptyDir outlives the Job",
         when=lambda v: v is not None),
    Rule("Repository", "spec.wipeOut", "deleting a Repository never deletes its data in stashplan"),
    *_invoker_refusals(_BC),
    Rule(_BC, "spec.target.paths", _WORKLOAD),
    Rule(_BC, "spec.target.exclude", _WORKLOAD),
    Rule(_BC, "spec.target.snapshotClassName", "only the VolumeSnapshotter driver reads it"),
    Rule(_BS, "spec.invoker.kind", "BackupBatch is not run by stashplan", when=lambda v: v == "BackupBatch"),
    *_invoker_refusals(_RS),
    Rule(_RS, "spec.target.volumeClaimTemplates", _WORKLOAD),
    Rule(_RS, "spec.pitr.exclusive", "KubeStash's: PostgreSQL recovery here includes the transaction at the "
         "target (recovery_target_inclusive); give a target just before it instead"),
    *(Rule(_RS, f"{base}[].{k}", "a database restore replays the whole dump; file selection is for workloads")
      for base in ("spec.target.rules", "spec.rules") for k in ("paths", "include", "exclude")),
    Rule("Function", "spec.podSecurityPolicyName", "PodSecurityPolicy was removed in Kubernetes 1.25"),
    Rule("AppBinding", "spec.clientConfig.insecureSkipTLSVerify", "the database clients always verify TLS; "
         "give the CA in caBundle"),
    Rule("AppBinding", "spec.clientConfig.serverName", "the database clients verify the host they connect to"),
)

# Kinds stashplan reads but never runs: one refusal line each (the rest of the folder still plans).
REFUSED_KINDS: dict[str, str] = {
    "BackupBatch": "stashplan runs one target per BackupConfiguration; split the members into "
                   "BackupConfigurations",
    "RestoreBatch": "stashplan restores one target per RestoreSession",
    "Restic": "the v1alpha1 sidecar model is not supported (use a BackupConfiguration)",
    "Recovery": "the v1alpha1 sidecar model is not supported (use a RestoreSession)",
}
# KubeDB database kinds (kubedb.com) are noted, never applied; those without an addon are refused
# (stashplan.api.kubedb).
