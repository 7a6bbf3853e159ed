"""A test PKI made with the `cryptography` package: CAs, server and client certificates (EC P-256), and
an atomic file write as secret rotation tools do it. Used by the web-config tests and doctor's TLS tests."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> Issued:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return Issued(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
        cert,
        key,
    )


def make_ca(cn: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(cert, key)


def issue(
    ca: Issued,
    cn: str,
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    client: bool = False,
    password: bytes | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _pem(builder.sign(ca.key, hashes.SHA256()), key, password)


@dataclass(frozen=True)
class PKI:
    server_ca: Issued
    server: Issued
    other_server_ca: Issued
    other_server: Issued
    client_ca: Issued
    client: Issued  # signed by client_ca, SAN prometheus.example.com
    client_other_san: Issued  # signed by client_ca, SAN intruder.example.com
    rogue_client: Issued  # signed by a CA the server does not trust


def make_pki() -> PKI:
    """Two server CAs with a localhost certificate each, a client CA with two clients, and a rogue client."""
    server_ca = make_ca("test server CA")
    other_server_ca = make_ca("test rotated server CA")
    client_ca = make_ca("test client CA")
    rogue_ca = make_ca("rogue CA")
    server_names = {"dns": ("localhost",), "ips": ("127.0.0.1",)}
    return PKI(
        server_ca=server_ca,
        server=issue(server_ca, "localhost", **server_names),  # type: ignore[arg-type]
        other_server_ca=other_server_ca,
        other_server=issue(other_server_ca, "localhost", **server_names),  # type: ignore[arg-type]
        client_ca=client_ca,
        client=issue(client_ca, "prometheus", dns=("prometheus.example.com",), client=True),
        client_other_san=issue(client_ca, "intruder", dns=("intruder.example.com",), client=True),
        rogue_client=issue(rogue_ca, "prometheus", dns=("prometheus.example.com",), client=True),
    )


def write(path: Path, data: bytes | str) -> Path:
    """Replace a file atomically (a new inode), as secret rotation tools do."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)
    return path
