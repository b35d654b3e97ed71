"""The stashplan OCI image for tests: `make image`'s archive, its root filesystem unpacked once per image
digest under .cache/image-rootfs/ (umoci raw unpack), its config, and whether it holds the checkout's code."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "image-rootfs"
SITE = "usr/local/lib/python3.13/dist-packages"  # where .ci/image.sh installs the wheel
PACKAGES = ("stashplan", "providers")


def archive_path() -> Path:
    """$STASHPLAN_TEST_IMAGE, else build/image/stashplan-<version>.oci.tar of the checkout."""
    if given := os.environ.get("STASHPLAN_TEST_IMAGE"):
        return Path(given)
    from stashplan import __version__

    return ROOT / "build" / "image" / f"stashplan-{__version__}.oci.tar"


def build() -> str:
    """`make image`'s script run for this checkout; "" when it built, else the reason it could not."""
    for tool in ("mmdebstrap", "umoci"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install mmdebstrap umoci)"
    done = subprocess.run(["bash", ".ci/image.sh"], cwd=ROOT, env={**os.environ, "PY": sys.executable},
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        return "make image failed: " + " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return ""


@dataclass(frozen=True)
class Image:
    """An unpacked image: `rootfs` (read-only by convention: shared by every container) and its config."""

    digest: str
    rootfs: Path
    user: tuple[int, int]
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    workdir: str
    labels: dict[str, str]

    @property
    def name(self) -> str:
        return self.labels.get("org.opencontainers.image.title", "")

    def serves(self, reference: str) -> bool:
        """Whether a Pod's `image` names this one: its repository's last path segment is the image's title
        (`stashplan:e2e`, `ghcr.io/stashplan/stashplan:0.1.0`)."""
        last = reference.split("@")[0].rsplit("/", 1)[-1]
        return bool(self.name) and last.split(":")[0] == self.name

    def stale(self) -> list[str]:
        """The checkout's Python files missing from, or different in, the image (relative paths)."""
        differ = []
        for package in PACKAGES:
            for path in sorted((ROOT / package).rglob("*.py")):
                rel = path.relative_to(ROOT)
                inside = self.rootfs / SITE / rel
                if not inside.is_file() or inside.read_bytes() != path.read_bytes():
                    differ.append(str(rel))
        return differ


def manifest_digest(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("./index.json") or tar.extractfile("index.json")
        assert member is not None, f"{archive}: no index.json"
        return str(json.load(member)["manifests"][0]["digest"])


def unpack(archive: Path, cache: Path = CACHE) -> Image:
    """The image's root filesystem and config, unpacked into `cache`/<digest>/ unless already there (a lock
    file keeps concurrent test sessions from unpacking the same digest twice)."""
    digest = manifest_digest(archive)
    folder = cache / digest.replace(":", "-")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "config.json").is_file():
            _unpack_into(archive, folder)
            older = sorted((f for f in cache.glob("sha256-*") if f != folder), key=lambda f: f.stat().st_mtime)
            for stale in older[:-1]:  # each is ~340 MiB: this one and the one before stay
                shutil.rmtree(stale, ignore_errors=True)
    return _image(digest, folder)


def _unpack_into(archive: Path, folder: Path) -> None:
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "layout").mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(work / "layout", filter="tar")
    index = json.loads((work / "layout" / "index.json").read_text())
    tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    subprocess.run(["umoci", "raw", "unpack", "--image", f"{work / 'layout'}:{tag}", str(work / "rootfs")],
                   check=True, capture_output=True)  # fmt: skip
    manifest = json.loads(_blob(work / "layout", index["manifests"][0]["digest"]))
    (work / "config.json").write_bytes(_blob(work / "layout", manifest["config"]["digest"]))
    shutil.rmtree(work / "layout")
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexa = digest.split(":")
    data = (layout / "blobs" / algorithm / hexa).read_bytes()
    assert hashlib.new(algorithm, data).hexdigest() == hexa, f"blob {digest} does not match its digest"
    return data


def _image(digest: str, folder: Path) -> Image:
    config = json.loads((folder / "config.json").read_text()).get("config") or {}
    uid, _, gid = str(config.get("User") or "0").partition(":")
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    return Image(digest, folder / "rootfs", (int(uid), int(gid or uid)), list(config.get("Entrypoint") or []),
                 list(config.get("Cmd") or []), env, str(config.get("WorkingDir") or "/"),
                 dict(config.get("Labels") or {}))  # fmt: skip
