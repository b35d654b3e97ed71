"""The plan's JSON form: what `plan --json` prints and `plan --out` saves (docs/plan-json.md). Secret values
never appear. A saved plan is sealed: an HMAC-SHA256 over its content with a key kept beside the state (never in
the file), so `apply FILE` refuses a plan altered since it was saved; the Secrets it will write are recorded only
as digests keyed the same way (not guessable from the file alone), which apply checks against the manifests. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from stashplan.plan.model import Action, Change, FieldDiff, Orphan, Plan
from stashplan.secrets import mask

PLAN_FORMAT = 1


class SealError(ValueError):
    """A saved plan whose seal does not verify: altered since it was saved, or sealed with another key."""


def _subkey(key: bytes, purpose: bytes) -> bytes:
    return hmac.digest(key, purpose, hashlib.sha256)


def secret_digest(secret: dict, key: bytes) -> str:
    """A keyed digest of a Secret's data, recorded in saved plans instead of the values."""
    data = json.dumps(secret.get("data") or {}, sort_keys=True).encode()
    return hmac.digest(_subkey(key, b"secret-digest"), data, hashlib.sha256).hex()


def _seal_of(data: dict, key: bytes) -> str:
    body = json.dumps({k: v for k, v in data.items() if k != "seal"}, sort_keys=True, default=str).encode()
    return hmac.digest(_subkey(key, b"plan-seal"), body, hashlib.sha256).hex()


def seal(data: dict, key: bytes) -> dict:
    """`data` (a plan's JSON with secret digests) with its seal added."""
    return {**data, "seal": _seal_of(data, key)}


def unseal(data: dict, key: bytes) -> tuple[Plan, dict[str, str]]:
    """The Plan of a sealed file and its Secret digests; SealError unless the seal verifies with `key`."""
    found = data.get("seal")
    if not isinstance(found, str) or not hmac.compare_digest(found, _seal_of(data, key)):
        raise SealError("its seal does not verify: the file was altered since `plan --out` wrote it, or it was saved "
                        "with another key (another machine or state folder); run plan again")
    return from_json(data)


def to_json(plan: Plan, *, secret_key: bytes | None = None) -> dict:
    """The documented JSON shape of a plan (see docs/plan-json.md). Secret values never appear; with
    `secret_key` (a saved plan), each Secret the plan writes carries its keyed digest."""

    def change(c: Change) -> dict:
        after = mask(c.after) if c.kind == "Secret" and c.action is not Action.STATUS else c.after
        out: dict = {
            "address": c.address, "action": c.action.value, "symbol": c.action.symbol,
            "kind": c.kind, "namespace": c.namespace, "name": c.name, "reason": c.reason,
            "before": c.before if c.kind != "Secret" else mask(c.before), "after": after,
            "diff": [{"path": d.path, "op": d.op, "before": d.before, "after": d.after} for d in c.diff],
            "resource_version": c.resource_version,
        }
        if secret_key is not None and c.kind == "Secret" and c.after is not None:
            out["secret_digest"] = secret_digest(c.after, secret_key)
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
