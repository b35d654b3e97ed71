"""A local backend's subPath stays inside mountPath when the repository is opened: a symbolic link under mountPath
that points elsewhere is refused in one line, a link that stays inside is followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.storage import StorageError, storage_from_repository


def _repository(mount: Path, sub_path: str) -> dict:
    return {"metadata": {"name": "local-repo", "namespace": "demo"},
            "spec": {"backend": {"local": {"mountPath": str(mount), "subPath": sub_path}}}}


def test_a_subpath_through_a_symlink_out_of_mountpath_is_refused(tmp_path: Path) -> None:
    mount, outside = tmp_path / "mount", tmp_path / "outside"
    mount.mkdir()
    outside.mkdir()
    (mount / "team-a").symlink_to(outside)
    with pytest.raises(StorageError) as err:
        storage = storage_from_repository(_repository(mount, "team-a/repo"), {})
        storage.put("config", b"x")
    message = str(err.value)
    assert "Repository local-repo: spec.backend.local.subPath 'team-a/repo' leads outside mountPath" in message
    assert "\n" not in message
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("sub_path", ["../escaped", "/etc"])
def test_a_subpath_with_dotdot_or_absolute_is_refused_when_opened(tmp_path: Path, sub_path: str) -> None:
    with pytest.raises(StorageError, match="must stay inside mountPath"):
        storage_from_repository(_repository(tmp_path / "mount", sub_path), {})
    assert not (tmp_path / "escaped").exists()


def test_a_symlink_that_stays_inside_mountpath_is_followed(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    (mount / "real").mkdir(parents=True)
    (mount / "alias").symlink_to(mount / "real")
    storage = storage_from_repository(_repository(mount, "alias/repo"), {})
    storage.put("config", b"x")
    assert (mount / "real" / "repo" / "config").read_bytes() == b"x"
