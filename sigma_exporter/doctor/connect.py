"""The doctor's first step: can this machine reach Sigma at all (DNS, TCP and TLS, verified against the
same CA bundle as the exporter's client), and if not, why."""

from __future__ import annotations

import os
import socket
import ssl
import time
from urllib.parse import urlsplit

from sigma_exporter.config.model import Config
from sigma_exporter.doctor.findings import FAILED, OK, WARNING, Finding
from sigma_exporter.sigma.pool import ca_bundle


def _tls_problem(exc: ssl.SSLCertVerificationError, host: str) -> tuple[str, str]:
    code, message = exc.verify_code, str(exc.verify_message)
    if code == 10:
        return "the server's certificate has expired", "renew Sigma's certificate"
    if code in (62, 64) or "mismatch" in message.lower():  # host name, IP address
        return (
            f"the certificate is not valid for {host!r}",
            "use the host name the certificate names in sigma.url, or have it reissued for this name",
        )
    if code in (18, 19, 20, 21):
        return (
            "the certificate is signed by an unknown CA",
            "set sigma.tls.ca_file to the CA that signed it (insecure_skip_verify only to try)",
        )
    return f"certificate verification failed ({message})", "check sigma.tls.ca_file"


def check_connect(config: Config) -> Finding:
    """Resolve, connect and (for https) shake hands as the exporter would; what failed, and why."""
    parts = urlsplit(config.sigma.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = config.sigma.timeout_seconds
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return Finding(
            "connect", FAILED, f"cannot resolve {host!r}: {exc.strerror}", "check the host in sigma.url"
        )
    start = time.perf_counter()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return Finding(
            "connect",
            FAILED,
            f"{host}:{port} refused the connection",
            "is Sigma listening there? check sigma.url",
        )
    except OSError as exc:
        what = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        return Finding(
            "connect", FAILED, f"{host}:{port}: {what}", "check the network path (firewall, proxy)"
        )
    connect_ms = (time.perf_counter() - start) * 1000
    where = f"{host}:{port} ({addresses[0][4][0]}) in {connect_ms:.1f} ms"
    with sock:
        if parts.scheme != "https":
            return Finding("connect", OK, f"{where}, plain HTTP", "")
        bundle = ca_bundle(config.sigma)  # what the exporter's own client verifies against
        context = ssl.create_default_context()
        if bundle is None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif os.path.isdir(bundle):
            context.load_verify_locations(capath=bundle)
        else:
            context.load_verify_locations(cafile=bundle)
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                version = tls.version()
        except ssl.SSLCertVerificationError as exc:
            problem, hint = _tls_problem(exc, host)
            return Finding("connect", FAILED, f"{where}; TLS: {problem}", hint)
        except (ssl.SSLError, OSError) as exc:
            return Finding(
                "connect", FAILED, f"{where}; TLS handshake failed ({type(exc).__name__})", "is it HTTPS?"
            )
    if config.sigma.tls.insecure_skip_verify:
        return Finding(
            "connect", WARNING, f"{where}, {version}, certificate NOT verified", "drop insecure_skip_verify"
        )
    return Finding("connect", OK, f"{where}, {version}, certificate verified", "")
