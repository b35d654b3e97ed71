"""TLS client certificates from an AppBinding's `spec.tlsSecret`: a real PostgreSQL and a real MariaDB that
admit the user by certificate only (backup and restore through the transfer, and the server's refusal
without it), the files each provider writes, and the errors for a missing Secret or key. The key
material never shows in argv, status, Events, logs or errors."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from providers.databases import ClientTLS, get_provider
from providers.databases.base import TaskParams
from stashplan.errors import TransferError
from stashplan.transfer.context import ContextError, load_backup
from stashplan.transfer.run import TransferOptions, backup, restore
from tests.fixtures.tls import TestPKI, TlsMariaDB, TlsPostgres, new_name
from tests.fixtures.transfer import StashWorld

KEY_MARK = "PRIVATE KEY"


def tls_appbinding(
    w: StashWorld, name: str, url: str, *, tls_secret: str = "", auth: str = "", app_type: str = "postgres"
) -> dict:
    spec: dict = {"type": f"kubedb.com/{app_type}", "clientConfig": {"url": url}}
    if tls_secret:
        spec["tlsSecret"] = {"name": tls_secret}
    if auth:
        spec["secret"] = {"name": auth}
    return w.cluster.create(
        {
            "apiVersion": "appcatalog.appscode.com/v1alpha1",
            "kind": "AppBinding",
            "metadata": {"name": name, "namespace": w.namespace},
            "spec": spec,
        }
    )


def _everything_recorded(w: StashWorld, *sessions: tuple[str, str]) -> str:
    parts = [json.dumps(w.status(kind, name)) for kind, name in sessions]
    parts += [json.dumps(w.events(name)) for _, name in sessions]
    return "\n".join(parts)


def test_postgres_backup_and_restore_authenticate_with_the_tls_secret_client_certificate(
    stash_world: StashWorld,
    tls_postgres: TlsPostgres,
    test_pki: TestPKI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = stash_world
    src, dst = new_name(), new_name()
    tls_postgres.sql(f"CREATE DATABASE {src}")
    tls_postgres.sql(f"CREATE DATABASE {dst}")
    tls_postgres.sql(
        "CREATE TABLE items(id serial primary key, name text); "
        "INSERT INTO items(name) SELECT 'item-' || g FROM generate_series(1, 300) g",
        db=src,
    )
    expected = tls_postgres.sql("SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items", db=src)
    tls = test_pki.tls_secret_data("postgres")
    w.secret("pg-client-tls", tls)
    base = f"postgresql://127.0.0.1:{tls_postgres.port}"
    tls_appbinding(w, "src-pg", f"{base}/{src}", tls_secret="pg-client-tls")  # no sslmode: verify-full
    tls_appbinding(w, "dst-pg", f"{base}/{dst}?sslmode=verify-ca", tls_secret="pg-client-tls")
    w.repository()
    w.backup_config("pg-tls", "src-pg")
    w.backup_session("pg-tls", "pg-tls-1")
    caplog.set_level(logging.DEBUG)

    done = backup(w.cluster, w.namespace, "pg-tls-1", TransferOptions(database="postgres", wait_timeout=10))

    assert done.ok, done.host.error
    w.restore_session("pg-tls-restore", "dst-pg")
    restored = restore(
        w.cluster, w.namespace, "pg-tls-restore", TransferOptions(database="postgres", wait_timeout=10)
    )
    assert restored.ok, restored.host.error
    assert tls_postgres.sql("SELECT count(*), md5(string_agg(name, ',' ORDER BY id)) FROM items", db=dst) == (
        expected
    )
    recorded = _everything_recorded(w, ("BackupSession", "pg-tls-1"), ("RestoreSession", "pg-tls-restore"))
    assert KEY_MARK not in recorded and KEY_MARK not in caplog.text


def test_postgres_backup_without_the_tls_secret_fails_with_the_servers_message(
    stash_world: StashWorld, tls_postgres: TlsPostgres
) -> None:
    w = stash_world
    w.secret("pg-auth", {"username": "postgres", "password": "a password is not enough"})
    w.cluster.create(
        {
            "apiVersion": "appcatalog.appscode.com/v1alpha1",
            "kind": "AppBinding",
            "metadata": {"name": "pg", "namespace": w.namespace},
            "spec": {
                "clientConfig": {"url": f"postgresql://127.0.0.1:{tls_postgres.port}/postgres"},
                "secret": {"name": "pg-auth"},
            },
        }
    )
    w.repository()
    w.backup_config("pg-plain", "pg")
    w.backup_session("pg-plain", "pg-plain-1")

    done = backup(w.cluster, w.namespace, "pg-plain-1", TransferOptions(database="postgres", wait_timeout=10))

    assert not done.ok
    assert "connection requires a valid client certificate" in done.host.error
    assert w.status("BackupSession", "pg-plain-1")["phase"] == "Failed"
    assert w.status("Repository", "repo").get("snapshotCount", 0) == 0


def test_mariadb_backup_and_restore_authenticate_with_the_tls_secret_client_certificate(
    stash_world: StashWorld, tls_mariadb: TlsMariaDB, test_pki: TestPKI, caplog: pytest.LogCaptureFixture
) -> None:
    w = stash_world
    src, dst = new_name(), new_name()
    tls_mariadb.sql(f"CREATE DATABASE {src}; CREATE DATABASE {dst}")
    tls_mariadb.sql("CREATE TABLE t(id int primary key, v varchar(20)); INSERT INTO t VALUES (1,'a'),(2,'b')", db=src)
    w.secret("maria-auth", {"username": tls_mariadb.user})  # no password: the certificate is the credential
    w.secret("maria-client-tls", test_pki.tls_secret_data(tls_mariadb.user))
    base = f"mysql://127.0.0.1:{tls_mariadb.port}"
    for name, db in (("src-maria", src), ("dst-maria", dst)):
        tls_appbinding(w, name, f"{base}/{db}", tls_secret="maria-client-tls", auth="maria-auth", app_type="mariadb")
    w.repository()
    w.backup_config("maria-tls", "src-maria")
    w.backup_session("maria-tls", "maria-tls-1")
    caplog.set_level(logging.DEBUG)

    done = backup(w.cluster, w.namespace, "maria-tls-1", TransferOptions(database="mariadb", wait_timeout=10))

    assert done.ok, done.host.error
    w.restore_session("maria-tls-restore", "dst-maria")
    restored = restore(
        w.cluster, w.namespace, "maria-tls-restore", TransferOptions(database="mariadb", wait_timeout=10)
    )
    assert restored.ok, restored.host.error
    assert tls_mariadb.sql("SELECT group_concat(v ORDER BY id) FROM t", db=dst) == "a,b"
    recorded = _everything_recorded(w, ("BackupSession", "maria-tls-1"), ("RestoreSession", "maria-tls-restore"))
    assert KEY_MARK not in recorded and KEY_MARK not in caplog.text


def test_mariadb_backup_without_the_tls_secret_is_refused_by_the_server(
    stash_world: StashWorld, tls_mariadb: TlsMariaDB
) -> None:
    w = stash_world
    w.secret("maria-auth", {"username": tls_mariadb.user})
    tls_appbinding(w, "maria", f"mysql://127.0.0.1:{tls_mariadb.port}/", auth="maria-auth", app_type="mariadb")
    w.repository()
    w.backup_config("maria-plain", "maria")
    w.backup_session("maria-plain", "maria-plain-1")

    done = backup(w.cluster, w.namespace, "maria-plain-1", TransferOptions(database="mariadb", wait_timeout=10))

    assert not done.ok
    assert f"Access denied for user '{tls_mariadb.user}'@'127.0.0.1'" in done.host.error
    assert w.status("Repository", "repo").get("snapshotCount", 0) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, r"AppBinding demo/pg: spec\.tlsSecret: Secret demo/pg-tls not found"),
        ({"tls.crt": "CERT"}, r"AppBinding demo/pg: spec\.tlsSecret: Secret demo/pg-tls has no tls\.key$"),
        ({"ca.crt": "CA"}, r"spec\.tlsSecret: Secret demo/pg-tls has no tls\.crt or tls\.key$"),
    ],
)
def test_missing_tls_secret_or_key_names_the_appbinding_and_field(
    stash_world: StashWorld, data: dict[str, str] | None, message: str
) -> None:
    w = stash_world
    if data is not None:
        w.secret("pg-tls", {**data, "unrelated": "-----BEGIN PRIVATE KEY-----"})
    tls_appbinding(w, "pg", "postgresql://127.0.0.1:1/postgres", tls_secret="pg-tls")
    w.repository()
    w.backup_config("pg-cfg", "pg")
    w.backup_session("pg-cfg", "pg-cfg-1")
    with pytest.raises(ContextError, match=message) as caught:
        load_backup(w.cluster, w.namespace, "pg-cfg-1")
    assert KEY_MARK not in str(caught.value)


def _binding(url: str) -> dict:
    return {"kind": "AppBinding", "metadata": {"name": "db", "namespace": "ns"},
            "spec": {"clientConfig": {"url": url}}}


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def test_postgres_client_certificate_goes_to_private_files_named_in_env(tmp_path: Path, test_pki: TestPKI) -> None:
    data = test_pki.tls_secret_data("postgres")
    tls = ClientTLS(data["tls.crt"], data["tls.key"], data["ca.crt"])
    provider = get_provider("postgres")
    conn = provider.connection(_binding("postgresql://db.local/app"), {}, tmp_path, tls=tls)
    spec = provider.dump(conn, TaskParams())
    assert spec.env["PGSSLMODE"] == "verify-full"
    assert Path(spec.env["PGSSLCERT"]).read_text() == data["tls.crt"]
    assert Path(spec.env["PGSSLKEY"]).read_text() == data["tls.key"]
    assert Path(spec.env["PGSSLROOTCERT"]).read_text() == data["ca.crt"]
    for key in ("PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT"):
        assert Path(spec.env[key]).parent == tmp_path and _private(Path(spec.env[key]))
    assert not any(KEY_MARK in a or "BEGIN" in a for a in spec.argv)
    assert KEY_MARK not in repr(conn) and KEY_MARK not in repr(tls) and KEY_MARK not in repr(spec)
    explicit = provider.connection(_binding("postgresql://db.local/app?sslmode=require"), {}, tmp_path, tls=tls)
    assert provider.dump(explicit, TaskParams()).env["PGSSLMODE"] == "require"


def test_ca_bundle_wins_over_the_tls_secret_ca(tmp_path: Path, test_pki: TestPKI) -> None:
    import base64

    data = test_pki.tls_secret_data("postgres")
    bundle = "-----BEGIN CERTIFICATE-----\nBUNDLE\n-----END CERTIFICATE-----\n"
    ab = _binding("postgresql://db.local/app")
    ab["spec"]["clientConfig"]["caBundle"] = base64.b64encode(bundle.encode()).decode()
    conn = get_provider("postgres").connection(
        ab, {}, tmp_path, tls=ClientTLS(data["tls.crt"], data["tls.key"], data["ca.crt"])
    )
    assert conn.ca_file is not None and conn.ca_file.read_text() == bundle and _private(conn.ca_file)


@pytest.mark.parametrize("database", ["mysql", "mariadb"])
def test_mysql_client_certificate_goes_to_ssl_flags_naming_private_files(
    database: str, tmp_path: Path, test_pki: TestPKI
) -> None:
    data = test_pki.tls_secret_data("backup")
    provider = get_provider(database)
    conn = provider.connection(
        _binding("mysql://db.local:3306/"),
        {"username": "backup", "password": "pw"},
        tmp_path,
        tls=ClientTLS(data["tls.crt"], data["tls.key"], data["ca.crt"]),
    )
    specs = [provider.probe(conn, TaskParams()).spec, provider.dump(conn, TaskParams()),
             provider.restore(conn, TaskParams()).spec]
    for spec in specs:
        flags = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in spec.argv if a.startswith("--ssl-")}
        assert set(flags) == {"--ssl-ca", "--ssl-cert", "--ssl-key"}, spec.argv
        assert Path(flags["--ssl-key"]).read_text() == data["tls.key"] and _private(Path(flags["--ssl-key"]))
        assert Path(flags["--ssl-cert"]).read_text() == data["tls.crt"] and _private(Path(flags["--ssl-cert"]))
        assert Path(flags["--ssl-ca"]).read_text() == data["ca.crt"]
        assert not any(KEY_MARK in a for a in spec.argv) and spec.env == {"MYSQL_PWD": "pw"}


@pytest.mark.parametrize("database", ["redis", "sqlite"])
def test_providers_without_client_certificates_refuse_a_tls_secret(database: str, tmp_path: Path) -> None:
    url = "redis://cache:6379/0" if database == "redis" else "sqlite:///tmp/x.db"
    with pytest.raises(TransferError, match=rf"AppBinding ns/db: spec\.tlsSecret is not supported for {database}"):
        get_provider(database).connection(_binding(url), {}, tmp_path, tls=ClientTLS("C", "K"))
