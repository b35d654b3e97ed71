"""The s3 backend over real HTTP(S): throttling/5xx answers become TransientError and are retried by the
wrapper (boto3's own retries are off), a missing object is ObjectNotFound, and TLS honours the CA
bundle (CA_CERT_DATA) and insecureTLS."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers.storage import ObjectNotFound, RetryingStorage, StorageError
from providers.storage.s3 import S3Settings, S3Storage
from stashplan.errors import TransientError
from tests.fixtures.s3 import S3Bucket

SLOW_DOWN = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"""


class Throttling(BaseHTTPRequestHandler):
    """Answers every request with 503 SlowDown, counting them."""

    hits = 0
    protocol_version = "HTTP/1.1"  # answers boto3's `Expect: 100-continue` at once

    def _answer(self) -> None:
        type(self).hits += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(SLOW_DOWN)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(SLOW_DOWN)

    do_GET = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def throttling_endpoint() -> Iterator[str]:
    Throttling.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_throttled_put_is_retried_by_the_wrapper_with_backoff_then_fails_transient(
    throttling_endpoint: str,
) -> None:
    s3 = S3Storage(S3Settings(throttling_endpoint, "bucket", "p", access_key_id="k", secret_access_key="s"))
    sleeps: list[float] = []
    storage = RetryingStorage(s3, attempts=4, base_delay=0.05, sleep=sleeps.append)
    with pytest.raises(TransientError, match="put config: SlowDown"):
        storage.put("config", b"payload")
    assert Throttling.hits == 4  # one request per attempt: boto3 itself does not retry
    assert len(sleeps) == 3 and sleeps[2] > sleeps[0]


def test_5xx_on_get_is_transient_and_a_missing_key_is_not_found(
    throttling_endpoint: str, s3_bucket: S3Bucket
) -> None:
    throttled = S3Storage(S3Settings(throttling_endpoint, "bucket", access_key_id="k", secret_access_key="s"))
    with pytest.raises(TransientError):
        throttled.get("index/x")
    env = s3_bucket.endpoint.env()
    real = S3Storage(
        S3Settings(s3_bucket.endpoint.url, s3_bucket.name, "pre",
                   access_key_id=env["AWS_ACCESS_KEY_ID"], secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    )  # fmt: skip
    with pytest.raises(ObjectNotFound, match="index/x"):
        real.get("index/x")


def self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    """A throwaway certificate for 127.0.0.1: (cert file, key file, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, pem


@pytest.fixture
def tls_endpoint(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A throttling S3 stand-in over HTTPS with a self-signed certificate: (URL, CA PEM)."""
    cert_file, key_file, pem = self_signed(tmp_path)
    Throttling.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", pem
    finally:
        server.shutdown()
        server.server_close()


def test_tls_needs_the_ca_bundle_or_insecure_tls(tls_endpoint: tuple[str, str]) -> None:
    url, pem = tls_endpoint
    unverified = S3Storage(S3Settings(url, "bucket", access_key_id="k", secret_access_key="s"))
    with pytest.raises(StorageError, match="TLS verification failed"):
        unverified.get("config")
    assert Throttling.hits == 0
    with pytest.raises(TransientError, match="SlowDown"):  # reached the server: TLS was accepted
        S3Storage(S3Settings(url, "bucket", ca_cert_data=pem, access_key_id="k", secret_access_key="s")).get(
            "config"
        )
    with pytest.raises(TransientError, match="SlowDown"):
        S3Storage(S3Settings(url, "bucket", insecure_tls=True, access_key_id="k", secret_access_key="s")).get(
            "config"
        )
    assert Throttling.hits == 2
