"""The plan's JSON form: what `plan --json` prints and `plan --out` saves (docs/plan-json.md). Secret values
never appear; a saved plan records only their digest, which apply checks against the manifest. Pure."""

from __future__ import annotations

import hashlib
import json

from stashplan.plan.model import Action, Change, FieldDiff, Orphan, Plan
from stashplan.secrets import mask

PLAN_FORMAT = 1


def secret_digest(secret: dict) -> str:
    """A digest of a Secret's data, recorded in saved plans instead of the values."""
    return hashlib.sha256(json.dumps(secret.get("data") or {}, sort_keys=True).encode()).hexdigest()


def to_json(plan: Plan, *, for_file: bool = False) -> dict:
    """The documented JSON shape of a plan (see docs/plan-json.md). Secret values never appear."""

    def change(c: Change) -> dict:
        after = mask(c.after) if c.kind == "Secret" and c.action is not Action.STATUS else c.after
        out: dict = {
            "address": c.address, "action": c.action.value, "symbol": c.action.symbol,
            "kind": c.kind, "namespace": c.namespace, "name": c.name, "reason": c.reason,
            "before": c.before if c.kind != "Secret" else mask(c.before), "after": after,
            "diff": [{"path": d.path, "op": d.op, "before": d.before, "after": d.after} for d in c.diff],
            "resource_version": c.resource_version,
        }
        if for_file and c.kind == "Secret" and c.after is not None:
            out["secret_digest"] = secret_digest(c.after)
        return out

    return {
        "format_version": PLAN_FORMAT,
        "created": plan.created,
        "sources": list(plan.sources),
        "summary": plan.counts(),
        "changes": [change(c) for c in plan.changes],
        "notes": list(plan.notes),
        "warnings": list(plan.warnings),
        "orphans": [{"address": o.address, "kind": o.kind, "namespace": o.namespace, "name": o.name,
                     "reason": o.reason} for o in plan.orphans],
        "refusals": list(plan.refusals),
    }


def from_json(data: dict) -> tuple[Plan, dict[str, str]]:
    """A Plan read back from a saved file, and the Secret digests it recorded (address -> digest)."""
    if data.get("format_version") != PLAN_FORMAT:
        raise ValueError(f"unsupported plan format {data.get('format_version')!r}; expected {PLAN_FORMAT}")
    changes = []
    digests = {}
    for c in data["changes"]:
        diff = tuple(FieldDiff(d["path"], d["before"], d["after"], d["op"]) for d in c["diff"])
        changes.append(Change(Action(c["action"]), c["kind"], c["namespace"], c["name"], c["after"], c["before"],
                              diff, c["reason"], c["resource_version"]))
        if "secret_digest" in c:
            digests[changes[-1].address] = c["secret_digest"]
    orphans = tuple(Orphan(o["kind"], o["namespace"], o["name"], o.get("reason", "")) for o in data.get("orphans", ()))
    return Plan(tuple(changes), tuple(data.get("notes", ())), tuple(data.get("warnings", ())),
                data.get("created", ""), tuple(data.get("sources", ())), orphans,
                tuple(data.get("refusals", ()))), digests
