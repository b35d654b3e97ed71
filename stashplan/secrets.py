"""Reading Secret objects (data base64 / stringData) and masking secret values for display. Pure."""

from __future__ import annotations

import base64
import binascii

MASK = "(sensitive value)"


def secret_data(secret: dict) -> dict[str, str]:
    """The decoded key/value pairs of a Secret dict: `data` (base64) overlaid by `stringData` (plain)."""
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[key] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            out[key] = str(value)
    for key, value in (secret.get("stringData") or {}).items():
        out[key] = str(value)
    return out


def mask(obj: dict | None) -> dict | None:
    """A copy of a Secret dict with every value replaced by a fixed mask; other kinds are returned as is."""
    if obj is None or obj.get("kind") != "Secret":
        return obj
    masked = dict(obj)
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            masked[field] = {k: MASK for k in obj[field]}
    return masked


def fold_string_data(secret: dict) -> dict:
    """A Secret as the API server stores it: `stringData` base64-encoded into `data` (stringData wins)."""
    if "stringData" not in secret:
        return secret
    out = {k: v for k, v in secret.items() if k != "stringData"}
    data = dict(secret.get("data") or {})
    data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in (secret["stringData"] or {}).items()})
    out["data"] = data
    return out
