"""Who a local Job's container process runs as, from its pod's and its container's securityContext (the container's
wins, as the kubelet merges them): runAsUser, runAsGroup, supplementalGroups and runAsNonRoot, the only keys local
mode honours (`stashplan.api.modes` refuses the rest at plan time). Switching user needs stashplan to run as root.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stashplan.errors import StashplanError

HONOURED = ("runAsUser", "runAsGroup", "runAsNonRoot", "supplementalGroups")


@dataclass(frozen=True)
class RunAs:
    """A process identity for `subprocess.Popen` (None: this process's own) and the passwd environment that goes
    with it (HOME, USER, LOGNAME), as a container of that user would have."""

    user: int | None = None
    group: int | None = None
    extra_groups: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def popen_kwargs(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user, "group": self.group, "extra_groups": list(self.extra_groups)}


def run_as(pod: Mapping[str, Any], container: Mapping[str, Any]) -> RunAs:
    """The identity a container of `pod` runs as here; StashplanError when the kubelet would not start it
    (runAsNonRoot with uid 0) or this process cannot switch to it (not root)."""
    merged = {**{k: v for k, v in ((pod.get("securityContext") or {}).items()) if k in HONOURED},
              **{k: v for k, v in ((container.get("securityContext") or {}).items()) if k in HONOURED}}
    uid = os.getuid() if merged.get("runAsUser") is None else int(merged["runAsUser"])
    if merged.get("runAsNonRoot") and uid == 0:
        raise StashplanError(f"container {container.get('name')!r} has runAsNonRoot and would run as root (uid 0)")
    supplemental = [int(g) for g in merged.get("supplementalGroups") or []]
    if merged.get("runAsUser") is None and merged.get("runAsGroup") is None and not supplemental:
        return RunAs()
    try:
        entry: pwd.struct_passwd | None = pwd.getpwuid(uid)
    except KeyError:
        entry = None
    # Without runAsGroup: the user's primary group, else 0, as a container whose image has no such user.
    default_gid = os.getgid() if merged.get("runAsUser") is None else (entry.pw_gid if entry else 0)
    gid = default_gid if merged.get("runAsGroup") is None else int(merged["runAsGroup"])
    groups = sorted({*(os.getgrouplist(entry.pw_name, gid) if entry else [gid]), *supplemental})
    if (uid, gid) == (os.getuid(), os.getgid()) and set(groups) <= {*os.getgroups(), gid}:
        return RunAs()  # already who it asks for
    if os.geteuid() != 0:
        raise StashplanError(f"container {container.get('name')!r}: its securityContext runs it as uid {uid} gid "
                             f"{gid}, and switching user needs stashplan to run as root (it runs as uid {os.getuid()})")
    env = {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name} if entry else {"HOME": "/"}
    return RunAs(uid, gid, tuple(groups), env)
