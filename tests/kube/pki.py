"""Certificates and keys for a test control plane: a CA, the API server's serving pair, client pairs
(CN = user, O = groups) and the ServiceAccount token signing key, written as PEM files. Key identifiers are
set as Kubernetes' own PKI sets them: Python 3.13's default TLS context (VERIFY_X509_STRICT) refuses a chain
whose certificates lack the Authority Key Identifier."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _write_key(path: Path, key: PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )  # fmt: skip
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class Pair:
    """A certificate file and its key file."""

    cert: Path
    key: Path


class ClusterPKI:
    """A throwaway CA in `folder` that issues the control plane's certificates."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stashplan-test-ca")])
        self._ca = (
            self._builder(name, name, self._key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.ca = folder / "ca.crt"
        _write_cert(self.ca, self._ca)

    @staticmethod
    def _builder(subject: x509.Name, issuer: x509.Name, key: PrivateKey) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
        )

    def _issue(self, stem: str, cn: str, groups: tuple[str, ...], server: bool) -> Pair:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            self._builder(subject, self._ca.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if server:
            names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            names += [x509.DNSName(d) for d in ("localhost", "kubernetes", "kubernetes.default.svc")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        pair = Pair(self.folder / f"{stem}.crt", self.folder / f"{stem}.key")
        _write_cert(pair.cert, builder.sign(self._key, hashes.SHA256()))
        _write_key(pair.key, key)
        return pair

    def server(self, stem: str) -> Pair:
        """A serving certificate for 127.0.0.1 / localhost / kubernetes.default.svc."""
        return self._issue(stem, stem, (), server=True)

    def client(self, stem: str, user: str, *groups: str) -> Pair:
        """A client certificate: the API server reads CN as the user name and O as its groups."""
        return self._issue(stem, user, groups, server=False)

    def signing_key(self, stem: str) -> Pair:
        """An RSA key pair for ServiceAccount tokens: `.cert` holds the public key, `.key` the private."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pair = Pair(self.folder / f"{stem}.pub", self.folder / f"{stem}.key")
        pair.cert.write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        )  # fmt: skip
        _write_key(pair.key, key)
        return pair


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not cert_sign,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
