"""TLS: a `TLSServerConfig` made into a server-side `ssl.SSLContext`, and the client SAN check."""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from sigma_exporter.web.webconfig.model import (
    CIPHER_SUITES_TLS12,
    TLS_VERSIONS,
    TLSServerConfig,
    WebConfig,
    WebConfigError,
)
from sigma_exporter.web.webconfig.parse import load_web_config, normalize_san


class _EncryptedKeyError(Exception):
    pass


def _refuse_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal and block the server.
    raise _EncryptedKeyError


@contextlib.contextmanager
def _pem_path(path: str | None, inline: str | None) -> Iterator[str]:
    """A path for `load_cert_chain`: the file itself, or an in-memory file holding the inline PEM."""
    if path:
        yield path
        return
    data = (inline or "").encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("sigma-exporter-pem", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="sigma-exporter-pem-")  # mode 0700
    try:
        name = os.path.join(directory, "pem")
        with open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)
        yield name
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _ssl_problem(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def build_ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """A server-side `SSLContext` for `tls`: certificate, client auth policy, versions, ciphers.

    Reads the certificate, key and CA files now; raises `WebConfigError` naming the key at fault.
    """
    source, where = tls.source, "tls_server_config"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS10/TLS11 are deprecated, but a valid toolkit setting
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
        ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = [CIPHER_SUITES_TLS12[s] for s in tls.cipher_suites if s in CIPHER_SUITES_TLS12]
    if tls12:
        try:
            ctx.set_ciphers(":".join(tls12))
        except ssl.SSLError as exc:
            raise WebConfigError(
                source, f"{where}.cipher_suites", f"none of the cipher suites is usable ({_ssl_problem(exc)})"
            ) from None

    cert_key = f"{where}.cert_file" if tls.cert_file else f"{where}.cert"
    key_key = f"{where}.key_file" if tls.key_file else f"{where}.key"
    for key, path in ((cert_key, tls.cert_file), (key_key, tls.key_file)):
        if path and not os.path.isfile(path):
            raise WebConfigError(source, key, f"cannot read {path}: no such file")
    try:
        with _pem_path(tls.cert_file, tls.cert) as cert_path, _pem_path(tls.key_file, tls.key) as key_path:
            ctx.load_cert_chain(cert_path, key_path, password=_refuse_password)
    except _EncryptedKeyError:
        raise WebConfigError(
            source, key_key, "the private key is encrypted; use an unencrypted key"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise WebConfigError(
            source,
            f"{cert_key} / {key_key}",
            f"failed to load the certificate and key ({_ssl_problem(exc)}); "
            "are they PEM, and does the key match the certificate?",
        ) from None

    auth = tls.client_auth_type
    if auth in ("NoClientCert", "RequestClientCert"):
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.verify_mode = ssl.CERT_OPTIONAL if auth == "VerifyClientCertIfGiven" else ssl.CERT_REQUIRED
        try:
            if tls.client_ca_file:
                ctx.load_verify_locations(cafile=tls.client_ca_file)
            elif tls.client_ca:
                ctx.load_verify_locations(cadata=tls.client_ca)
            else:  # Go verifies against the system roots when no client CA is given
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, OSError, ValueError) as exc:
            key = f"{where}.client_ca_file" if tls.client_ca_file else f"{where}.client_ca"
            raise WebConfigError(
                source, key, f"failed to load the client CA certificates ({_ssl_problem(exc)})"
            ) from None
    return ctx


def peer_sans(peer_cert: Mapping[str, Any]) -> list[str]:
    """The DNS, IP, e-mail and URI subject alternative names of `SSLSocket.getpeercert()`."""
    names = []
    for kind, value in peer_cert.get("subjectAltName", ()):
        if kind == "IP Address":
            names.append(normalize_san(value))
        elif kind in ("DNS", "email", "URI"):
            names.append(value)
    return names


def client_sans_allowed(tls: TLSServerConfig, peer_cert: Mapping[str, Any] | None) -> bool:
    """`client_allowed_sans`: True when unset, or when the client certificate has one of them."""
    if tls.client_allowed_sans is None:
        return True
    if not peer_cert:
        return False
    allowed = set(tls.client_allowed_sans)
    return any(name in allowed for name in peer_sans(peer_cert))


def ssl_problem_of(exc: BaseException) -> str:
    """A short, secret-free description of a TLS failure, for logs."""
    return _ssl_problem(exc)


def validate_web_config_file(path: str | os.PathLike[str]) -> WebConfig:
    """Like the toolkit's web.Validate: parse the file and load its certificates (for check-config)."""
    config = load_web_config(path)
    if config.tls is not None:
        build_ssl_context(config.tls)
    return config
