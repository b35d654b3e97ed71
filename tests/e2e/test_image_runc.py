"""The stashplan OCI image run by Debian's runc: its entry point answers, and `stashplan transfer backup|restore`
from inside it (user 65532, the host's network, the repository and local-mode state bind-mounted) backs a
PostgreSQL database up and restores it into another one identical to the first."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from stashplan import __version__
from stashplan.cluster.local.store import LocalCluster
from tests.fixtures.databases import PG_HOST, PG_PORT, PgDatabase
from tests.fixtures.transfer import StashWorld
from tests.kube.image import Image
from tests.kube.runc import Mount, Process, Runc

pytestmark = pytest.mark.heavy


def run(runc: Runc, image: Image, tmp: Path, args: list[str], env: dict[str, str] | None = None,
        mounts: list[Mount] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The image's entry point with `args`, as its user, in the foreground; stdout and stderr captured."""
    cid = f"t-{uuid.uuid4().hex[:12]}"
    process = Process([*image.entrypoint, *args], {**image.env, **(env or {})}, image.workdir, *image.user)
    argv = runc.argv(tmp / cid, cid, process, mounts or [], hostname=cid)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def dump(db: PgDatabase) -> str:
    """The database as pg_dump prints it, without the per-run random key of \\restrict (PostgreSQL 15.14+)."""
    out = subprocess.run(["pg_dump", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "--no-owner", db.name],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def test_the_image_entry_point_answers_with_the_version(runc: Runc, stashplan_image: Image, tmp_path: Path) -> None:
    done = run(runc, stashplan_image, tmp_path, ["--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"stashplan {__version__}"


def test_the_image_carries_no_name_service_settings_of_the_machine_that_built_it(stashplan_image: Image) -> None:
    """mmdebstrap copies the build host's resolv.conf and hostname in; a runtime mounts its own over them."""
    for name in ("resolv.conf", "hostname"):
        assert (stashplan_image.rootfs / "etc" / name).read_bytes() == b"", name


def test_a_postgres_backup_and_restore_from_the_image_gives_an_identical_database(
    runc: Runc, stashplan_image: Image, pg_database: Callable[[], PgDatabase], tmp_path: Path
) -> None:
    src, dst = pg_database(), pg_database()
    src.sql("CREATE TABLE items(id int primary key, name text, at timestamptz); "
            "INSERT INTO items SELECT g, md5(g::text), '2026-01-01'::timestamptz + g * interval '1 s' "
            "FROM generate_series(1, 3000) g; CREATE INDEX items_name ON items(name)")  # fmt: skip
    shared = tmp_path / "shared"  # the local-mode state and the repository, mounted at the same path
    (shared / "repos").mkdir(parents=True)
    w = StashWorld(LocalCluster(shared / "state.db"), shared / "state.db", shared / "repos")
    w.appbinding("src-pg", src.url, app_type="kubedb.com/postgres", username="postgres")
    w.appbinding("dst-pg", dst.url, username="postgres")
    w.repository()
    w.backup_config("pg-backup", "src-pg")
    w.backup_session("pg-backup", "s1")
    w.restore_session("r1", "dst-pg")
    w.cluster.close()  # the container writes the state file as user 65532: hand the folder over
    subprocess.run(["chown", "-R", "{}:{}".format(*stashplan_image.user), str(shared)], check=True)
    env = {"STASHPLAN_CLUSTER": "local", "STASHPLAN_STATE": str(w.state)}
    mounts = [Mount(shared, str(shared))]
    common = ["--namespace=demo", "--database=postgres", "--wait-timeout=30", "--hostname=host-0"]

    backup = run(runc, stashplan_image, tmp_path, ["transfer", "backup", "--backupsession=s1", *common], env, mounts)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "BackupSession s1: Succeeded" in backup.stdout
    restore = run(runc, stashplan_image, tmp_path, ["transfer", "restore", "--restoresession=r1", *common], env, mounts)
    assert restore.returncode == 0, restore.stdout + restore.stderr

    assert dump(dst) == dump(src)
    w.cluster = LocalCluster(w.state)
    try:
        assert w.status("BackupSession", "s1")["phase"] == "Succeeded"
        assert w.status("RestoreSession", "r1")["phase"] == "Succeeded"
    finally:
        w.cluster.close()
    written = [p for p in (shared / "repos" / "repo").rglob("*") if p.is_file()]
    assert written and {os.stat(p).st_uid for p in written} == {stashplan_image.user[0]}
