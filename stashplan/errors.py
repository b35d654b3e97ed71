"""The one exception tree of stashplan: object errors carry the object's identity; transient vs permanent."""

from __future__ import annotations

import re


class StashplanError(Exception):
    """Base of every error stashplan raises on purpose. The message is one line meant for a user."""


class TransientError(StashplanError):
    """A failure that may succeed on retry (throttling, 5xx, timeouts, lost connections)."""


class ObjectError(StashplanError):
    """An error about one Kubernetes-shaped object, identified by kind, namespace and name."""

    reason = "Error"

    def __init__(self, kind: str, namespace: str | None, name: str, message: str = "") -> None:
        self.kind = kind
        self.namespace = namespace or ""
        self.name = name
        self.message = message
        ident = f"{kind} {self.namespace + '/' if self.namespace else ''}{name}"
        super().__init__(f"{self.reason}: {ident}" + (f": {message}" if message else ""))


class NotFound(ObjectError):
    reason = "NotFound"


class AlreadyExists(ObjectError):
    reason = "AlreadyExists"


class Conflict(ObjectError):
    """A write carried a stale resourceVersion."""

    reason = "Conflict"


class FieldConflict(Conflict):
    """An apply would change fields another field manager owns: reported, nothing overwritten. `fields` holds
    (field path, the other manager) pairs."""

    def __init__(self, kind: str, namespace: str | None, name: str, fields: list[tuple[str, str]]) -> None:
        self.fields = list(fields)
        owned = "; ".join(f'field {path} is managed by "{manager}"' for path, manager in self.fields)
        super().__init__(kind, namespace, name, f"{owned} (server-side apply conflict; not overwritten)")


class Invalid(ObjectError):
    reason = "Invalid"


class Forbidden(ObjectError):
    reason = "Forbidden"


class ManifestError(StashplanError):
    """User manifests failed validation: one line per problem, naming file, kind/name and field path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StalePlanError(StashplanError):
    """A saved plan was computed against objects that have changed since."""


class LeadershipLost(StashplanError):
    """This loop can no longer be sure it holds the Lease: it stops writing at once."""


class RepositoryError(StashplanError):
    """The snapshot repository is missing, damaged, locked, or the password is wrong."""


class TransferError(StashplanError):
    """A backup or restore pipe failed; the message holds the failing side and its stderr tail."""


_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)([^/\s@:]*):([^/\s@]+)@")


def redact_urls(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` URL in it replaced by `***` (what an error
    may quote of a storage URL that carries credentials)."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", text)
