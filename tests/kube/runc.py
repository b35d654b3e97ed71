"""Containers of an unpacked image run by Debian's runc: one OCI bundle per container over an overlay of the
shared root filesystem (mounted in a private mount namespace, so it goes away with the container), the host's
network (no network namespace), its own pid/ipc/uts/mount namespaces, no capabilities, bind mounts as given."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.kube.image import Image

_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
           "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]  # fmt: skip
_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_SYSTEM_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
]  # fmt: skip
# The overlay is mounted in a mount namespace of its own, then runc replaces that shell (signals reach runc,
# which forwards them to the container's first process).
_LAUNCH = 'mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && shift 4 && exec "$@"'


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class Process:
    """What runs: argv (entry point already applied), environment, working directory, user and groups."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


class Runc:
    """runc with its state under `state` (not /run/runc: test sessions do not see each other's containers)."""

    def __init__(self, image: Image, state: Path, binary: str = "runc") -> None:
        self.image = image
        self.state = state
        self.binary = shutil.which(binary) or binary
        state.mkdir(parents=True, exist_ok=True)

    def argv(self, bundle: Path, cid: str, process: Process, mounts: list[Mount], *, hostname: str = "",
             readonly_root: bool = False) -> list[str]:  # fmt: skip
        """Write the bundle (config.json and the overlay's folders) and return the command that runs the
        container in the foreground: its exit status is the container's (128+n when killed by signal n)."""
        for part in ("upper", "work", "rootfs"):
            (bundle / part).mkdir(parents=True, exist_ok=True)
        config = spec(bundle / "rootfs", process, mounts, hostname=hostname, readonly_root=readonly_root)
        (bundle / "config.json").write_text(json.dumps(config, indent=1))
        layers = [str(self.image.rootfs), str(bundle / "upper"), str(bundle / "work"), str(bundle / "rootfs")]
        run = [self.binary, "--root", str(self.state), "run", "--bundle", str(bundle), cid]
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", _LAUNCH, "launch", *layers, *run]

    def kill(self, cid: str, signal: str) -> bool:
        """Send `signal` (TERM, KILL) to the container's first process; False when it is not running."""
        done = subprocess.run([self.binary, "--root", str(self.state), "kill", cid, signal], capture_output=True)
        return done.returncode == 0

    def delete(self, cid: str) -> None:
        """Remove what runc keeps of a container that is gone (`runc run` does it itself when it exits)."""
        subprocess.run([self.binary, "--root", str(self.state), "delete", "--force", cid], capture_output=True)

    def running(self) -> list[str]:
        done = subprocess.run([self.binary, "--root", str(self.state), "list", "--format", "json"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return [c["id"] for c in json.loads(done.stdout or "null") or []]


def spec(rootfs: Path, process: Process, mounts: list[Mount], *, hostname: str = "",
         readonly_root: bool = False) -> dict:  # fmt: skip
    """The OCI runtime configuration: no capabilities, no new privileges, the host's network."""
    binds = [{"destination": m.target, "type": "bind", "source": str(m.source),
              "options": ["rbind", "nosuid", "nodev", *(["ro"] if m.readonly else [])]}
             for m in sorted(mounts, key=lambda m: m.target.count("/"))]  # fmt: skip
    caps: list[str] = []
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "args": process.args, "cwd": process.cwd,
            "env": [f"{k}={v}" for k, v in process.env.items()],
            "user": {"uid": process.uid, "gid": process.gid, "additionalGids": sorted({process.gid, *process.groups})},
            "capabilities": {k: caps for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": readonly_root},
        "hostname": hostname or "stashplan",
        "mounts": [*_SYSTEM_MOUNTS, *binds],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
                  "maskedPaths": _MASKED, "readonlyPaths": _READONLY},
    }  # fmt: skip
