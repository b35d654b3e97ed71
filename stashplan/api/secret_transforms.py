"""An AppBinding's `spec.secretTransforms` (kmodules): renameKey, addKey (stringValue or base64 value),
addKeysFrom, removeKey, applied in
order to the decoded credentials Secret, as Stash's addons do before connecting. Pure; values never in errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from stashplan.errors import StashplanError

_OPS = ("renameKey", "addKey", "addKeysFrom", "removeKey")


def transform_secret(
    data: Mapping[str, str],
    transforms: Sequence[Any],
    read_secret: Callable[[str], Mapping[str, str]],
    where: str,
) -> dict[str, str]:
    """`data` after each transform in turn; `read_secret(name)` reads a Secret of the AppBinding's namespace
    (for addKeysFrom). A malformed transform is a StashplanError naming `where` and its index."""
    out = dict(data)
    for i, item in enumerate(transforms or ()):
        at = f"{where}.secretTransforms[{i}]"
        ops = [op for op in _OPS if isinstance(item, dict) and item.get(op) is not None]
        if len(ops) != 1:
            raise StashplanError(f"{at}: set exactly one of {', '.join(_OPS)}")
        op, body = ops[0], item[ops[0]]
        if not isinstance(body, dict):
            raise StashplanError(f"{at}.{op}: must be a mapping")
        if op == "renameKey":
            old, new = str(body.get("from") or ""), str(body.get("to") or "")
            if not old or not new:
                raise StashplanError(f"{at}.renameKey: needs from and to")
            if old in out:
                out[new] = out.pop(old)
        elif op == "addKey":
            key = str(body.get("key") or "")
            if not key:
                raise StashplanError(f"{at}.addKey.key is required")
            if body.get("stringValue") is not None:
                out[key] = str(body["stringValue"])
                continue
            try:
                out[key] = base64.b64decode(str(body.get("value") or ""), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise StashplanError(f"{at}.addKey.value: must be base64 of UTF-8 text (or use stringValue)") from None
        elif op == "addKeysFrom":
            name = str((body.get("secretRef") or {}).get("name") or "")
            if not name:
                raise StashplanError(f"{at}.addKeysFrom.secretRef.name is required")
            out.update(read_secret(name))
        else:
            out.pop(str(body.get("key") or ""), None)
    return out
