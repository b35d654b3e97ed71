"""The `stashplan` command line: each command parses options, calls one core function, renders, exits.

Errors are one line on stderr with exit code 1; `--debug` shows the traceback.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperGroup

from stashplan import DEFAULT_IMAGE, __version__, exits
from stashplan.cluster.factory import ClusterSettings, open_cluster, settings
from stashplan.errors import ManifestError, StashplanError

if TYPE_CHECKING:  # the reconcile core (and the API models it loads) only for commands that plan
    from typer import _click as click  # the click that typer's groups are built on

    from stashplan.desired.compute import Settings

# Command groups of their own modules, imported only when used or listed (`stashplan plan` starts without them).
SUBCOMMAND_GROUPS = {"repo": "stashplan.repository.cli", "transfer": "stashplan.transfer.cli", "pg": "stashplan.pitr.cli"}


class _Commands(TyperGroup):
    """The top-level commands, with the SUBCOMMAND_GROUPS added when first looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in SUBCOMMAND_GROUPS if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMAND_GROUPS and cmd_name not in self.commands:
            group = typer.main.get_group(importlib.import_module(SUBCOMMAND_GROUPS[cmd_name]).app)
            group.name = cmd_name
            self.commands[cmd_name] = group
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        if args and args[0] not in self.commands and args[0] not in SUBCOMMAND_GROUPS:
            for name in SUBCOMMAND_GROUPS:  # an unknown command: "Did you mean" considers every command
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_Commands,
    name="stashplan",
    help="Stash-style database backups, planned and applied like Terraform, run as a loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")

FileOpt = Annotated[list[Path] | None, typer.Option("-f", "--filename", help="Manifest file or directory (repeatable).")]
NamespaceOpt = Annotated[str | None, typer.Option("-n", "--namespace", help="Only this namespace.")]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="local (embedded, default without kubeconfig) or kube.")]
StateOpt = Annotated[Path | None, typer.Option(
    "--state", help="Local mode state file (default: the nearest .stashplan/state.db here or in a parent folder, "
                    "else a new one here).")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="Kubeconfig file (kube mode).")]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context (kube mode).")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
FullOpt = Annotated[bool, typer.Option("--full", help="Show every change of a large plan (by default over 200 "
                                                     "changes are summarised by kind and namespace).")]
ImageOpt = Annotated[str, typer.Option("--image", envvar="STASHPLAN_IMAGE", help="Image for trigger and Job pods.")]


def _jobs_pushgateway(url: str) -> str:
    """The URL the planned Jobs get in their environment: refused with credentials, which would be written into
    every Job (and its plan) for anyone who may read Jobs."""
    if not url:
        return url
    from stashplan import metrics

    if metrics.has_credentials(url):
        raise typer.BadParameter(f"{metrics.redact(url)} holds user:password, which would be written into every "
                                 "Job's environment and plan; give the Pushgateway's URL without them (e.g. behind "
                                 "a proxy that authenticates the cluster's Jobs)")
    return url


PushgatewayOpt = Annotated[str, typer.Option("--pushgateway-url", envvar="PROMETHEUS_PUSHGATEWAY_URL",
                                             callback=_jobs_pushgateway, help="Pushgateway the Jobs push metrics to.")]
ScopeOpt = Annotated[str | None, typer.Option(
    "--scope", envvar="STASHPLAN_SCOPE",
    help="all, or opted-in: only objects labelled stashplan.dev/scope=stashplan or in a Namespace so labelled "
         "(default: opted-in while another installation, such as Stash's, owns the Stash CRDs; else all).")]
AdoptOpt = Annotated[bool, typer.Option("--adopt-crds", help="With --cluster kube: take over Stash CRDs another "
                                                             "installation owns (else refused).")]

err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def _error(message: object) -> None:
    exits.error(message)


def _run(debug: bool, fn: Callable[[], T]) -> T:
    """Run a command body (errors end it as stashplan.exits says). One-shot commands run without the cyclic
    garbage collector (their objects are trees, freed by reference counting; the collector cost a third of a
    large plan); `apply --watch` re-enables it per iteration."""
    gc.disable()
    return exits.run(fn, debug=debug)


def _console() -> Console:
    """Stdout console; not on a terminal (pipes, CI, logs) lines are not wrapped at 80 columns."""
    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _cluster_settings(cluster: str | None, state: Path | None, kubeconfig: str | None,
                      context: str | None) -> ClusterSettings:
    return settings(cluster, state, kubeconfig, context)


def _settings(cs: ClusterSettings, image: str, pushgateway_url: str, scope: str | None = None) -> Settings:
    """Planner settings; in local mode commands are checked against this machine's PATH at plan time, and
    task params always against the database providers' allow-lists."""
    import shutil

    from providers.databases import check_task_params
    from stashplan.desired.compute import Settings

    local = cs.mode == "local"
    return Settings(image=image, pushgateway_url=pushgateway_url, check_params=check_task_params,
                    command_available=(lambda c: shutil.which(c) is not None) if local else None,
                    scope=_scope(cs, scope), cluster=cs.mode == "kube")


def _plain_settings(image: str, pushgateway_url: str, cs: ClusterSettings | None = None,
                    scope: str | None = None) -> Settings:
    """Settings for apply and the loop: task params checked against the providers' allow-lists."""
    from providers.databases import check_task_params
    from stashplan.desired.compute import Settings

    return Settings(image=image, pushgateway_url=pushgateway_url, check_params=check_task_params,
                    scope=_scope(cs, scope) if cs is not None else Settings().scope,
                    cluster=cs is not None and cs.mode == "kube")


def _scope(cs: ClusterSettings, given: str | None) -> Any:
    """The scope asked for, else the detected one: `opted-in` in a cluster whose Stash CRDs another installation
    owns (one info line says why), `all` otherwise and in local mode."""
    from stashplan.desired.scope import Scope, parse_scope

    if given:
        return parse_scope(given)
    if cs.mode != "kube":
        return Scope.ALL
    from stashplan.operator.crd_owners import detect_scope

    c = open_cluster(cs)
    try:
        scope, why = detect_scope(c)
    finally:
        c.close()
    if why:
        logging.getLogger("stashplan.operator.scope").info("%s", why)
    return scope


def _existing_state(cs: ClusterSettings) -> None:
    """Read-only commands never create a local state file: say where it was looked for instead."""
    if cs.mode == "local" and not cs.state.exists():
        raise StashplanError(f"no local state: {cs.state.resolve()} does not exist and no .stashplan/state.db was "
                             f"found in {Path.cwd()} or a parent folder (apply creates one; or pass --state)")


def _note_if_empty(c: Any, cs: ClusterSettings) -> None:
    if cs.mode == "local" and c.resource_version() == "0":
        err.print(f"note: the state file {cs.state.resolve()} holds no objects yet", markup=False)


def _load(files: Sequence[Path] | None, refusals: list[str] | None = None,
          mode: str = "") -> tuple[list[dict], list[str]]:
    """Manifests and their sources; refused objects go to `refusals` when given (else they are errors), also
    those with a field the `mode` (local or kube) cannot honour (stashplan.api.modes)."""
    if not files:
        return [], []
    from stashplan.api import load_paths
    from stashplan.api.modes import split_by_mode

    manifests = load_paths(list(files), refusals)
    identity = (os.getuid(), os.getgid())  # who starts local Jobs (a securityContext may need root to switch)
    manifests, problems = split_by_mode(manifests, mode, identity) if mode else (manifests, [])
    if problems and refusals is None:
        raise ManifestError(problems)
    if refusals is not None:
        refusals.extend(problems)  # left out whole, like every refused object; the others still plan
    return manifests, [str(f) for f in files]


def _loop_manifests(files: Sequence[Path] | None, mode: str) -> Callable[[], list[dict]]:
    """The loop's manifests, read each iteration: a refused or invalid object is left out and logged once as an
    error (the others are still planned, applied and run)."""
    logged: set[str] = set()

    def load() -> list[dict]:
        refusals: list[str] = []
        manifests, _ = _load(files, refusals, mode)
        for line in refusals:
            if line not in logged:
                logged.add(line)
                logging.getLogger("stashplan.operator.loop").error("%s", exits.one_line(line))
        return manifests

    return load


def _with_refusals(p: Any, refusals: list[str]) -> Any:
    """The plan with the load-time refusals first; each is printed as one error line and plan exits 1."""
    from dataclasses import replace

    return replace(p, refusals=(*refusals, *p.refusals))


def _print_refusals(p: Any) -> None:
    for line in p.refusals:
        _error(line)


def _addons() -> list[dict]:
    from stashplan.api import builtin_addons

    return builtin_addons()


@app.command()
def plan(
    filename: FileOpt = None,
    namespace: NamespaceOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as JSON (docs/plan-json.md).")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Save the plan to FILE for `apply FILE`.")] = None,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode",
                                                    help="Exit 0 with no changes, 1 on error, 2 with changes.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Also destroy stashplan-applied objects missing from -f.")] = False,
    full: FullOpt = False,
    scope: ScopeOpt = None,
    cluster: ClusterOpt = None, state: StateOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
    image: ImageOpt = DEFAULT_IMAGE, pushgateway_url: PushgatewayOpt = "", debug: DebugOpt = False,
) -> None:
    """Show what apply would change: CronJobs, Jobs, status updates, deletions."""
    from stashplan.apply.actual import make_plan
    from stashplan.plan.render import render_json, render_plan
    from stashplan.plan.saved import to_json

    def body() -> int:
        if prune and not filename:
            raise StashplanError("--prune needs -f: orphans are what the manifests no longer hold")
        refusals: list[str] = []
        cs = _cluster_settings(cluster, state, kubeconfig, context)
        manifests, sources = _load(filename, refusals, cs.mode)
        c = open_cluster(cs)
        try:
            p = make_plan(c, manifests=manifests, addons=_addons(), sources=sources, namespace=namespace,
                          settings=_settings(cs, image, pushgateway_url, scope), prune=prune)
        finally:
            c.close()
        p = _with_refusals(p, refusals)
        if out is not None and not p.refusals:
            from stashplan.apply.plan_key import plan_key, write_private
            from stashplan.plan.saved import seal

            key = plan_key(cs, create=True)
            write_private(out, json.dumps(seal(to_json(p, secret_key=key), key), indent=2, default=str))
        if json_out:
            typer.echo(render_json(p))
        else:
            render_plan(p, _console(), full=full)
            if out is not None and not p.refusals:
                typer.echo(f"\nSaved the plan to {out}. To perform exactly these actions, run: stashplan apply {out}")
        if p.refusals:
            _print_refusals(p)
            return 1
        return 2 if (detailed_exitcode and not p.settled) else 0

    raise typer.Exit(_run(debug, body))


@app.command()
def apply(
    plan_file: Annotated[Path | None, typer.Argument(help="A plan saved with `plan --out`.")] = None,
    filename: FileOpt = None,
    namespace: NamespaceOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Skip the interactive approval.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Repeat plan+apply until interrupted (the operator).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between iterations with --watch.")] = 10.0,
    iterations: Annotated[int | None, typer.Option("--iterations", help="Stop after N iterations (--watch).")] = None,
    resync: Annotated[float, typer.Option("--resync", help="Kube mode with --watch: seconds between full relists "
                                                          "and plans (in between, only changes are planned).")] = 300.0,
    leader_elect: Annotated[bool | None, typer.Option(
        "--leader-elect/--no-leader-elect", help="Hold a Lease so one loop acts (default: on in kube mode).")] = None,
    lease_namespace: Annotated[str, typer.Option("--lease-namespace", envvar="POD_NAMESPACE",
                                                 help="Namespace of the leader Lease.")] = "stashplan-system",
    health_port: Annotated[int | None, typer.Option("--health-port",
                                                    help="Serve /healthz, /readyz, /metrics on this port.")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Also destroy stashplan-applied objects missing from -f.")] = False,
    full: FullOpt = False,
    wait_for_lock: Annotated[bool, typer.Option(
        "--wait-for-lock", help="--watch in local mode: wait for the loop that holds the state to end.")] = False,
    scope: ScopeOpt = None,
    cluster: ClusterOpt = None, state: StateOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
    image: ImageOpt = DEFAULT_IMAGE, pushgateway_url: PushgatewayOpt = "", debug: DebugOpt = False,
) -> None:
    """Carry out a plan: a saved FILE exactly, or a fresh plan of -f manifests (with --watch: forever)."""
    from stashplan.apply.actual import make_plan
    from stashplan.apply.writer import apply_plan
    from stashplan.plan.render import render_plan, summary_line

    cs = _cluster_settings(cluster, state, kubeconfig, context)
    if watch:
        from stashplan.operator.watch import WatchOptions
        from stashplan.operator.watch import watch as run_watch

        loop_opts = WatchOptions(interval, iterations, cs.mode == "kube" if leader_elect is None else leader_elect,
                                lease_namespace, health_port, resync, wait_for_lock)
        raise typer.Exit(_run(debug, lambda: run_watch(cs, _loop_manifests(filename, cs.mode), _addons(), namespace,
                                                       loop_opts, _plain_settings(image, pushgateway_url, cs, scope))))

    def body() -> int:
        c = open_cluster(cs)
        try:
            if plan_file is not None:
                return _apply_saved(c, plan_file, filename, cs)
            if prune and not filename:
                raise StashplanError("--prune needs -f: orphans are what the manifests no longer hold")
            refusals: list[str] = []
            manifests, sources = _load(filename, refusals, cs.mode)
            p = make_plan(c, manifests=manifests, addons=_addons(), sources=sources, namespace=namespace,
                          settings=_settings(cs, image, pushgateway_url, scope), prune=prune)
            p = _with_refusals(p, refusals)
            console = _console()
            render_plan(p, console, full=full)
            if p.refusals:  # each refused or invalid object is left out of what is applied; the others are applied
                _print_refusals(p)
            if p.empty:
                return 1 if p.refusals else 0
            if not auto_approve:
                if not sys.stdin.isatty():
                    raise StashplanError("refusing to apply without approval: stdin is not a terminal; use --auto-approve")
                answer = typer.prompt("\nDo you want to perform these actions? Only 'yes' will be accepted")
                if answer.strip() != "yes":
                    typer.echo("Apply cancelled.")
                    return 1
            result = apply_plan(c, p, pushgateway_url=pushgateway_url)
            _print_skipped(result)
            typer.echo(f"\nApply complete! {summary_line(p).removeprefix('Plan: ')}")
            if result.conflicts:
                return 1
            if p.refusals:
                err.print(f"{len(p.refusals)} error(s) above: those objects were not applied (exit 1)", markup=False)
                return 1
            return 0
        finally:
            c.close()

    raise typer.Exit(_run(debug, body))


def _apply_saved(c: Any, plan_file: Path, filename: Sequence[Path] | None, cs: ClusterSettings) -> int:
    from stashplan.apply.plan_key import plan_key
    from stashplan.apply.writer import apply_plan
    from stashplan.kinds import identity
    from stashplan.plan.build import normalise_manifest
    from stashplan.plan.render import summary_line
    from stashplan.plan.saved import SealError, unseal

    not_a_plan = f"{plan_file}: not a plan saved by `stashplan plan --out`"
    try:
        data = json.loads(plan_file.read_text())
    except ValueError as exc:
        raise StashplanError(f"{not_a_plan} ({exc})") from None
    if not isinstance(data, dict) or "seal" not in data:
        raise StashplanError(f"{not_a_plan} (it carries no seal)")
    key = plan_key(cs, create=False)
    try:
        saved, digests = unseal(data, key)
    except SealError as exc:
        raise StashplanError(f"{plan_file}: refused: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise StashplanError(f"{not_a_plan} ({exc})") from None
    secrets: dict[str, dict] = {}
    if digests:
        manifests, _ = _load(filename or [Path(s) for s in saved.sources])
        for m in manifests:
            if m.get("kind") == "Secret":
                obj = normalise_manifest(m)
                kind, ns, name = identity(obj)
                secrets[f"{kind}/{ns}/{name}"] = obj
    result = apply_plan(c, saved, saved=True, secrets=secrets, digests=digests, digest_key=key)
    _print_skipped(result)
    typer.echo(f"Apply complete! {summary_line(saved).removeprefix('Plan: ')}")
    return 1 if result.conflicts else 0


def _print_skipped(result: Any) -> None:
    """Deferred changes (re-planned next time), then each field-manager conflict as an error line (exit 1)."""
    conflicted = {line.split(": ", 1)[0] for line in result.conflicts}
    for change, why in result.skipped:
        if change.address not in conflicted:
            err.print(f"deferred {change.address}: {why}", markup=False)
    for line in result.conflicts:
        _error(line)


@app.command()
def trigger(
    name: Annotated[str, typer.Argument(help="The BackupConfiguration to back up now.")],
    namespace: Annotated[str, typer.Option("-n", "--namespace")] = "default",
    cluster: ClusterOpt = None, state: StateOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Create a BackupSession for a BackupConfiguration (what the trigger CronJob runs)."""
    from stashplan.desired.sessions import new_backup_session

    def body() -> int:
        c = open_cluster(_cluster_settings(cluster, state, kubeconfig, context))
        try:
            config = c.get("BackupConfiguration", namespace, name)
            session = c.create(new_backup_session(config, time.time()))
        finally:
            c.close()
        typer.echo(f"backupsession {namespace}/{session['metadata']['name']} created")
        return 0

    raise typer.Exit(_run(debug, body))


@app.command()
def get(
    kind: Annotated[str, typer.Argument(help="Kind, e.g. backupsession, BackupConfiguration, cronjob, job.")],
    name: Annotated[str | None, typer.Argument()] = None,
    namespace: NamespaceOpt = None,
    output: Annotated[str | None, typer.Option("-o", "--output", help="yaml or json.")] = None,
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print Secret values (masked by default).")]
    = False,
    cluster: ClusterOpt = None, state: StateOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List or show objects in the cluster (Secret values masked unless --show-secrets)."""
    from stashplan.listing import canonical_kind, table
    from stashplan.plan.render import render_object

    def body() -> int:
        k = canonical_kind(kind)
        cs = _cluster_settings(cluster, state, kubeconfig, context)
        _existing_state(cs)
        c = open_cluster(cs)
        try:
            _note_if_empty(c, cs)
            objs = [c.get(k, namespace or "default", name)] if name else c.list(k, namespace)
        finally:
            c.close()
        if output in ("yaml", "json"):
            if name:
                typer.echo(render_object(objs[0], output, reveal=show_secrets))
            else:
                typer.echo(render_object({"apiVersion": "v1", "kind": "List", "items": objs}, output,
                                         reveal=show_secrets))
        elif output:
            raise ValueError(f"--output must be yaml or json, not {output!r}")
        else:
            _console().print(table(k, objs, datetime.now(UTC)))
        return 0

    raise typer.Exit(_run(debug, body))


@app.command()
def describe(
    kind: Annotated[str, typer.Argument(help="Kind, e.g. backupsession, restoresession, bc, repository, job.")],
    name: Annotated[str, typer.Argument(help="The object's name.")],
    namespace: Annotated[str, typer.Option("-n", "--namespace", help="Its namespace.")] = "default",
    tail: Annotated[int, typer.Option("--tail", help="Lines of the session Job's log to show.")] = 20,
    cluster: ClusterOpt = None, state: StateOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show one object as `kubectl describe` does: phase and reason, conditions, its Job's log tail, Events."""
    from stashplan.describe import Described, job_name_for, render
    from stashplan.errors import NotFound
    from stashplan.listing import canonical_kind

    def body() -> int:
        k = canonical_kind(kind)
        cs = _cluster_settings(cluster, state, kubeconfig, context)
        _existing_state(cs)
        c = open_cluster(cs)
        try:
            obj = c.get(k, namespace, name)
            events = [e for e in c.list("Event", namespace)
                      if (e.get("involvedObject") or {}).get("kind") == k
                      and (e.get("involvedObject") or {}).get("name") == name]
            job, log_tail, source = None, [], ""
            if (jname := job_name_for(k, name)) is not None:
                try:
                    job = c.get("Job", namespace, jname)
                except NotFound:
                    job = None
                if job is not None and cs.mode == "local":
                    path = cs.state.parent / "logs" / f"{namespace}_{jname}.log"
                    source = str(path)
                    if path.exists():
                        log_tail = path.read_text(errors="replace").splitlines()[-tail:]
        finally:
            c.close()
        typer.echo(render(Described(obj, events, job, log_tail, source), datetime.now(UTC)), nl=False)
        return 0

    raise typer.Exit(_run(debug, body))


@app.command()
def status(
    namespace: NamespaceOpt = None,
    output: Annotated[str | None, typer.Option("-o", "--output", help="json for scripts.")] = None,
    cluster: ClusterOpt = None, state: StateOpt = None, kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
    debug: DebugOpt = False,
) -> None:
    """One table of every BackupConfiguration: last success and its age against the schedule, next run,
    duration, stored size and growth, integrity."""
    from stashplan.overview import rows
    from stashplan.overview_render import render

    def body() -> int:
        cs = _cluster_settings(cluster, state, kubeconfig, context)
        _existing_state(cs)
        c, now = open_cluster(cs), datetime.now(UTC)
        try:
            found = rows(c.list("BackupConfiguration", namespace), c.list("BackupSession", namespace),
                         c.list("Repository", namespace), now)
        finally:
            c.close()
        render(found, now, _console(), output or "")
        return 0

    raise typer.Exit(_run(debug, body))


def _existing_crds(cluster: str | None, kubeconfig: str | None, context: str | None, command: str) -> Any:
    """The Stash CRDs in the cluster named by --cluster kube (None without --cluster: nothing is checked)."""
    if cluster is None:
        return None
    if cluster != "kube":
        raise StashplanError(f"{command}: --cluster {cluster}: only a Kubernetes cluster (--cluster kube) has CRDs "
                             "to check")
    from stashplan.operator.crd_owners import read_crds

    c = open_cluster(_cluster_settings("kube", None, kubeconfig, context))
    try:
        return read_crds(c)
    finally:
        c.close()


def _unchecked_note(cluster: str | None, command: str) -> None:
    if cluster is None:
        err.print(f"note: not checked against a cluster; `stashplan {command} --cluster kube` refuses to overwrite "
                  "Stash CRDs another installation owns", markup=False)


@app.command()
def crds(
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Write one file per CRD here.")] = None,
    adopt_crds: AdoptOpt = False,
    cluster: Annotated[str | None, typer.Option("--cluster", help="kube: first check who owns the CRDs there.")]
    = None,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
) -> None:
    """Print the CustomResourceDefinitions of the Stash kinds (or write them to --out-dir)."""
    from stashplan.api import crds as crd_mod
    from stashplan.operator.crd_owners import install_documents

    def body() -> int:
        docs = install_documents(crd_mod.crd_manifests(), _existing_crds(cluster, kubeconfig, context, "crds"),
                                 adopt=adopt_crds, command="crds")
        if out_dir is not None:
            crd_mod.write_crds(out_dir, docs)
            typer.echo(f"wrote CRDs to {out_dir}")
        else:
            typer.echo(crd_mod.render_crds_yaml(docs), nl=False)
            _unchecked_note(cluster, "crds")
        return 0

    raise typer.Exit(_run(False, body))


@app.command()
def install(
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace for the operator.")] = "stashplan-system",
    image: Annotated[str, typer.Option("--image", help="Operator image.")] = DEFAULT_IMAGE,
    adopt_crds: AdoptOpt = False,
    skip_crds: Annotated[bool, typer.Option("--skip-crds", help="Leave the CRDs out: run beside another "
                                                                "installation (Stash's) on its CRDs.")] = False,
    cluster: Annotated[str | None, typer.Option("--cluster", help="kube: first check who owns the CRDs there "
                                                                  "(refused if another installation does).")] = None,
    kubeconfig: KubeconfigOpt = None, context: ContextOpt = None,
) -> None:
    """Print the manifests that run stashplan in a cluster: `stashplan install --cluster kube | kubectl apply -f -`."""
    import yaml

    from stashplan.operator.crd_owners import install_documents
    from stashplan.operator.install import install_objects

    def body() -> int:
        existing = None if skip_crds else _existing_crds(cluster, kubeconfig, context, "install")
        docs = install_documents(install_objects(namespace, image), existing, adopt=adopt_crds, skip_crds=skip_crds)
        typer.echo("---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs), nl=False)
        if not skip_crds:
            _unchecked_note(cluster, "install")
        return 0

    raise typer.Exit(_run(False, body))  # a missing part or a refusal: one line, exit 1


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"stashplan {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True)] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Log at debug level.")] = False,
) -> None:
    """stashplan: plan, apply, transfer, report."""
    from stashplan.operator.logs import configure_logging

    configure_logging(logging.DEBUG if verbose else logging.INFO, structured=not sys.stderr.isatty())



def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
