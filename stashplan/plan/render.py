"""Rendering a Plan: Terraform-style rich text, or JSON. Takes a Console; never decides anything."""

from __future__ import annotations

import json
from typing import Any

import yaml
from rich.console import Console
from rich.text import Text

from stashplan.plan.model import Action, Change, Plan
from stashplan.plan.saved import to_json
from stashplan.secrets import mask

_STYLE = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red", Action.STATUS: "cyan"}
_VERB = {Action.CREATE: "will be created", Action.UPDATE: "will be updated in-place",
         Action.DELETE: "will be destroyed",
         Action.STATUS: "status will be updated"}
_ORDER = {Action.DELETE: 0, Action.CREATE: 1, Action.UPDATE: 2, Action.STATUS: 3}


def _value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return json.dumps(v)


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    line = f"Plan: {c['add']} to add, {c['change']} to change, {c['destroy']} to destroy."
    if c["status"]:
        line += f" {c['status']} status update{'s' if c['status'] != 1 else ''}."
    return line


def _object_body(change: Change) -> list[Text]:
    obj = mask(change.after if change.action is not Action.DELETE else change.before) or {}
    sign = "+" if change.action is Action.CREATE else "-"
    style = "green" if sign == "+" else "red"
    text = yaml.safe_dump({k: v for k, v in obj.items() if k != "status"}, sort_keys=False, width=100)
    return [Text(f"      {sign} {line}", style=style) for line in text.rstrip().splitlines()]


def change_lines(change: Change, *, full: bool = True) -> list[Text]:
    style = _STYLE[change.action]
    head = Text()
    head.append(f"  {change.action.symbol} ", style=f"bold {style}")
    head.append(change.address, style="bold")
    head.append(f" {_VERB[change.action]}")
    if change.reason:
        head.append(f"  ({change.reason})", style="dim")
    lines = [head]
    if change.action in (Action.CREATE, Action.DELETE):
        if full:
            lines += _object_body(change)
        return lines
    for d in change.diff:
        if d.op == "add":
            lines.append(Text(f"      + {d.path}: {_value(d.after)}", style="green"))
        elif d.op == "remove":
            lines.append(Text(f"      - {d.path}: {_value(d.before)}", style="red"))
        else:
            lines.append(Text(f"      ~ {d.path}: {_value(d.before)} -> {_value(d.after)}", style="yellow"))
    return lines


SUMMARY_OVER = 200  # plans with more changes print a summary grouped by kind and namespace (unless full)


def _grouped_notes(lines: tuple[str, ...]) -> list[str]:
    """Notes like "<Kind> <ns>/<name>: <text>" counted by (kind, text): one line per group, with an example."""
    groups: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        subject, sep, text = line.partition(": ")
        kind = subject.split(" ", 1)[0] if sep else ""
        groups.setdefault((kind, text if sep else line), []).append(subject if sep else "")
    out = []
    for (kind, text), subjects in groups.items():
        if len(subjects) == 1:
            out.append(f"{subjects[0]}: {text}" if kind else text)
        else:
            out.append(f"{len(subjects)} {kind}s (e.g. {subjects[0].split(' ', 1)[-1]}): {text}")
    return out


def _summary_lines(plan: Plan) -> list[Text]:
    """One line per (action, kind, namespace): the count and the first few names."""
    groups: dict[tuple[Action, str, str], list[str]] = {}
    for c in plan.changes:
        groups.setdefault((c.action, c.kind, c.namespace), []).append(c.name)
    lines = []
    for (action, kind, ns), names in sorted(groups.items(), key=lambda g: (_ORDER[g[0][0]], g[0][1], g[0][2])):
        line = Text()
        line.append(f"  {action.symbol} ", style=f"bold {_STYLE[action]}")
        line.append(f"{len(names):>6} {kind}", style="bold")
        line.append(f" in {ns or '(cluster)'} {_VERB[action]}: ")
        shown = sorted(names)[:3]
        line.append(", ".join(shown) + (f", … ({len(names) - len(shown)} more)" if len(names) > len(shown) else ""),
                    style="dim")
        lines.append(line)
    return lines


def render_plan(plan: Plan, console: Console, *, full: bool = False) -> None:
    """Print the plan like `terraform plan`: notes, each change with field diffs, then the summary.

    A plan of more than SUMMARY_OVER changes prints one line per kind and namespace instead of each
    change, and groups repeated notes (`full` prints everything)."""
    summarise = not full and len(plan.changes) > SUMMARY_OVER
    notes = _grouped_notes(plan.notes) if summarise or (not full and len(plan.notes) > SUMMARY_OVER) else plan.notes
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"))
    for warning in plan.warnings:
        console.print(Text(f"warning: {warning}", style="bold yellow"))
    if plan.orphans:
        kept = " except Namespaces" if any(o.kind == "Namespace" for o in plan.orphans) else ""
        console.print(Text(f"Applied earlier by stashplan, no longer in the manifests (destroyed with --prune{kept}):",
                           style="bold yellow"))
        for orphan in plan.orphans:
            console.print(Text(f"  ? {orphan.address}  ({orphan.reason})", style="yellow"), soft_wrap=True)
        console.print()
    if plan.empty:
        if plan.refusals:
            console.print(Text(f"No changes to apply to the other objects; {len(plan.refusals)} error(s) below.",
                               style="bold yellow"))
        elif plan.orphans:
            console.print(Text(f"No changes to apply; {len(plan.orphans)} orphaned object(s) listed above.",
                               style="bold yellow"))
        else:
            console.print(Text("No changes. The cluster matches the configuration.", style="bold green"))
        return
    if summarise:
        console.print(f"stashplan will perform the following actions ({len(plan.changes)} changes, summarised by "
                      "kind and namespace; --full shows each, --json always does):\n")
        for line in _summary_lines(plan):
            console.print(line, soft_wrap=True)
        console.print()
        console.print(Text(summary_line(plan), style="bold"))
        return
    console.print("stashplan will perform the following actions:\n")
    for change in sorted(plan.changes, key=lambda c: (_ORDER[c.action], c.kind, c.namespace, c.name)):
        for line in change_lines(change, full=True):
            console.print(line, soft_wrap=True)
        console.print()
    console.print(Text(summary_line(plan), style="bold"))


def render_json(plan: Plan) -> str:
    return json.dumps(to_json(plan), indent=2, sort_keys=False, default=str)


def render_object(obj: dict, output: str, reveal: bool = False) -> str:
    """An object (or a List of them) as JSON or YAML, every Secret's values masked unless `reveal`."""
    if not reveal:
        obj = dict(obj, items=[mask(o) for o in obj["items"]]) if obj.get("kind") == "List" else mask(obj) or obj
    if output == "json":
        return json.dumps(obj, indent=2)
    return yaml.safe_dump(obj, sort_keys=False)
