"""A repository whose bucket (Azure: container) does not exist yet is created with it, as restic (and so Stash)
does at init: by `stashplan repo init` and by the init a backup makes, on S3 (moto), GCS (fake-gcs-server) and
Azure (Azurite). Credentials that may not create it get one line naming the permission, and exit 1."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stashplan.repository.cli import app
from stashplan.transfer.run import TransferOptions, backup
from tests.fixtures.s3 import S3Endpoint
from tests.fixtures.transfer import StashWorld
from tests.servers import StorageTarget

runner = CliRunner()
PROVIDERS = ["s3", "gcs", "azure"]


def _new_bucket() -> str:
    return f"stashplan-new-{uuid.uuid4().hex[:10]}"


def _where(provider: str, request: pytest.FixtureRequest, bucket: str) -> tuple[str, dict, dict[str, str]]:
    """(repository URL, Stash's spec.backend, the storage Secret's keys) of `bucket`, which does not exist."""
    if provider == "s3":
        s3: S3Endpoint = request.getfixturevalue("s3_endpoint")
        return (f"s3:{s3.url}/{bucket}/db", {"s3": {"endpoint": s3.url, "bucket": bucket, "prefix": "db"}},
                s3.env())
    target: StorageTarget = request.getfixturevalue(f"{provider}_target")
    url = f"{'gs' if provider == 'gcs' else provider}:{bucket}:/db"
    key = "bucket" if provider == "gcs" else "container"
    return url, {provider: {key: bucket, "prefix": "db"}}, target.secret


@pytest.mark.parametrize("provider", PROVIDERS)
def test_repo_init_creates_the_missing_bucket(provider: str, request: pytest.FixtureRequest) -> None:
    url, _, secret = _where(provider, request, _new_bucket())
    env = {**secret, "STASHPLAN_PASSWORD": "init-pass"}
    result = runner.invoke(app, ["init", "--repo", url], env=env)
    assert result.exit_code == 0 and "created repository" in result.output, result.output
    again = runner.invoke(app, ["init", "--repo", url], env=env)  # the repository is in the new bucket
    assert again.exit_code == 1 and "a repository already exists" in again.stderr, again.output


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_backup_into_a_missing_bucket_creates_it(
    provider: str, request: pytest.FixtureRequest, stash_world: StashWorld, sqlite_file: Path
) -> None:
    w = stash_world
    _, backend, secret = _where(provider, request, _new_bucket())
    w.appbinding("app-db", f"sqlite://{sqlite_file}")
    w.repository(backend=backend, secret=secret)
    w.backup_config("db-backup", "app-db")
    w.backup_session("db-backup", "s1")
    done = backup(w.cluster, w.namespace, "s1", TransferOptions(database="sqlite"))
    assert done.ok, done.host.error
    assert w.status("Repository", "repo")["snapshotCount"] == 1


def test_credentials_that_may_not_create_the_bucket_get_one_line_naming_the_permission(
    s3_without_create_bucket: S3Endpoint,
) -> None:
    s3 = s3_without_create_bucket
    bucket = _new_bucket()
    url = f"s3:{s3.url}/{bucket}/db"
    result = runner.invoke(app, ["init", "--repo", url], env={**s3.env(), "STASHPLAN_PASSWORD": "init-pass"})
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        f"error: {url}: bucket {bucket} does not exist and these credentials may not create it "
        "(CreateBucket: AccessDenied): grant s3:CreateBucket, or create the bucket"
    ]
