"""Reading Secret objects (data base64 / stringData), masking Secret values and URL credentials in what is shown or
stored, and how a Job pod receives its Secrets. Pure."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from stashplan.errors import redact_urls

MASK = "(sensitive value)"
__all__ = ["MASK", "Masker", "given_secrets", "mask", "redact_urls", "secret_data", "secret_values"]


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


# How a Job pod receives its session's Secrets (no Secret permission needed: the kubelet resolves them). The
# planner names them in SECRETS_ENV ({"<secret name>": "<env prefix>"}) and adds an optional `envFrom` secretRef
# with that prefix per Secret; the transfer reads them back with `given_secrets`.
SECRETS_ENV = "STASHPLAN_SECRETS"
SECRET_PREFIX = "STASHPLAN_SECRET_"
# A Repository of another namespace (shared by its usagePolicy) is given to the pod as JSON: the Job may read
# objects of its own namespace only.
REPOSITORY_ENV = "STASHPLAN_REPOSITORY"


def given_secrets(environ: MutableMapping[str, str]) -> dict[str, dict[str, str]] | None:
    """The Secrets the pod spec gave ({name: data}; a Secret that does not exist has no data), removed from
    `environ` so that no child process inherits them; None when the pod was given none (the transfer then reads
    through the API)."""
    raw = environ.pop(SECRETS_ENV, None)
    if raw is None:
        return None
    prefixes = {str(k): str(v) for k, v in (json.loads(raw) or {}).items()}
    out: dict[str, dict[str, str]] = {name: {} for name in prefixes}
    for var in [v for v in environ if v.startswith(SECRET_PREFIX)]:
        value = environ.pop(var)
        for name, prefix in prefixes.items():
            if var.startswith(prefix):
                out[name][var[len(prefix):]] = value
    return out


MIN_MASKED = 4  # shorter values are not masked: they would hide ordinary words; a password that short is weak
# Secret keys whose values are not secret and are quoted by database errors ("access denied for user ..."):
# masking a user name such as `backup` would hide every such word in a log.
PUBLIC_KEYS = frozenset({"username", "user", "USERNAME", "USER", "tls.crt", "ca.crt", "CA_CERT_DATA"})


def secret_values(data: Mapping[str, str]) -> list[str]:
    """The values of a Secret's data that are secret (all but PUBLIC_KEYS)."""
    return [v for k, v in data.items() if k not in PUBLIC_KEYS]


class Masker:
    """Replaces each Secret value (of at least MIN_MASKED characters) in text with MASK, and URL credentials."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if len(v) >= MIN_MASKED}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return redact_urls(text)

    def deep(self, obj: Any) -> Any:
        """A copy of a JSON-like value with every string masked."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, dict):
            return {k: self.deep(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.deep(v) for v in obj]
        return obj
