"""`--web.config.file` on a real loopback server: the exporter's own WebServer and request middleware with a
test endpoint, over TLS (server and client certificates, allowed SANs, rotation) and plain HTTP (basic auth,
rate limit), and a bad new file that keeps the last good one. Certificates: the session's test PKI
(tests/support/pki.py). (Parsing, auth and SSL contexts alone: tests/unit/web/test_webconfig_*.py.)"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from sigma_exporter.metrics.exposition import ProcessPart
from sigma_exporter.web.routes import Routes
from sigma_exporter.web.server import Limits, WebServer
from sigma_exporter.web.stats import ServerStats
from sigma_exporter.web.webconfig import (
    WebConfigSecurity,
    WebConfigWatcher,
)
from tests.support.net import wait_for
from tests.support.pki import PKI, Issued, write
from tests.support.webconfig import SERVER_TLS, basic, hash_password, web_yml

#: The TLS handshake lines come from the server, the reload errors from the watcher.
SERVER_LOGGER = "sigma_exporter.web.server"
LOGGER = "sigma_exporter.web.webconfig.watcher"
DEADLINE = 10.0


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello\n")


@contextlib.contextmanager
def serving(watcher: WebConfigWatcher) -> Iterator[WebServer]:
    stats = ServerStats()
    routes = Routes(None, ProcessPart(), list, WebConfigSecurity(watcher), stats)  # type: ignore[arg-type]
    app = web.Application(middlewares=[routes.middleware])
    app.on_response_prepare.append(routes.add_headers)
    app.router.add_get("/metrics", hello)
    app.router.add_get("/", hello)
    server = WebServer(
        app, ("127.0.0.1", 0), limits=Limits(tls_handshake_timeout=2.0), stats=stats, watcher=watcher
    ).start()
    try:
        yield server
    finally:
        server.stop(DEADLINE)
        assert not server._thread.is_alive()


def client_context(ca: Issued, tmp: Path, cert: Issued | None = None) -> ssl.SSLContext:
    ca_path = tmp / f"trust-{abs(hash(ca.cert_pem))}.pem"
    ca_path.write_bytes(ca.cert_pem)
    ctx = ssl.create_default_context(cafile=str(ca_path))
    if cert is not None:
        cert_path, key_path = tmp / "client.crt", tmp / "client.key"
        cert_path.write_bytes(cert.cert_pem)
        key_path.write_bytes(cert.key_pem)
        ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def https_get(
    server: WebServer, ctx: ssl.SSLContext, headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPMessage]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPSConnection(str(host), int(port), context=ctx, timeout=5)
    try:
        conn.request("GET", "/metrics", headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def fails_tls(server: WebServer, ctx: ssl.SSLContext) -> bool:
    """True when no HTTP answer comes back (with TLS 1.3 a refused client cert shows on first read)."""
    try:
        https_get(server, ctx)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return True
    return False


def test_https_with_the_ca_works_and_headers_are_sent(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(tls_dir, SERVER_TLS + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    with serving(WebConfigWatcher(path)) as server:
        status, body, headers = https_get(server, client_context(pki.server_ca, tls_dir))
        assert (status, body) == (200, b"hello\n")
        assert headers["X-Frame-Options"] == "deny"
        assert fails_tls(server, client_context(pki.other_server_ca, tls_dir)), "an untrusted CA must fail"


def test_plain_http_to_the_tls_port_fails_cleanly(
    tls_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    path = web_yml(tls_dir, SERVER_TLS)
    caplog.set_level(logging.DEBUG, logger=SERVER_LOGGER)
    with serving(WebConfigWatcher(path)) as server:
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
        try:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            assert response.status == 400
            assert b"HTTP request to an HTTPS server" in response.read()
        finally:
            conn.close()
        wait_for(lambda: server.tls_handshake_failures == 1, DEADLINE, what="the failure to be counted")
        # Still serving TLS.
        assert https_get(server, client_context(pki.server_ca, tls_dir))[0] == 200
    lines = [r for r in caplog.records if r.name == SERVER_LOGGER and "TLS handshake" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.DEBUG
    assert "Traceback" not in capfd.readouterr().err


def test_silent_and_vanishing_clients_do_not_block_the_server(
    tls_dir: Path, pki: PKI, capfd: pytest.CaptureFixture[str]
) -> None:
    path = web_yml(tls_dir, SERVER_TLS)
    with serving(WebConfigWatcher(path)) as server:
        host, port = server.server_address[:2]
        address = (str(host), int(port))
        silent = socket.create_connection(address, timeout=5)  # connects, never says hello
        try:
            for _ in range(3):  # connect and go away at once
                socket.create_connection(address, timeout=5).close()
            with socket.create_connection(address, timeout=5) as garbage:
                garbage.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
            start = time.monotonic()
            assert https_get(server, client_context(pki.server_ca, tls_dir))[0] == 200
            assert time.monotonic() - start < 1.5, "the silent client must not delay others"
            # The silent client is dropped after tls_handshake_timeout.
            silent.settimeout(DEADLINE)
            assert silent.recv(1) == b""
        finally:
            silent.close()
        wait_for(lambda: server.tls_handshake_failures >= 5, DEADLINE, what="all handshake failures counted")
    assert "Traceback" not in capfd.readouterr().err


def test_required_client_cert(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(
        tls_dir,
        SERVER_TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        assert fails_tls(server, client_context(pki.server_ca, tls_dir)), "no client cert"
        assert fails_tls(server, client_context(pki.server_ca, tls_dir, pki.rogue_client)), "untrusted CA"
        status, body, _ = https_get(server, client_context(pki.server_ca, tls_dir, pki.client))
        assert (status, body) == (200, b"hello\n")


def test_optional_client_cert_is_verified_when_given(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(
        tls_dir,
        SERVER_TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: client-ca.crt\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        assert https_get(server, client_context(pki.server_ca, tls_dir))[0] == 200
        assert https_get(server, client_context(pki.server_ca, tls_dir, pki.client))[0] == 200
        assert fails_tls(server, client_context(pki.server_ca, tls_dir, pki.rogue_client))


def test_client_allowed_sans(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(
        tls_dir,
        SERVER_TLS
        + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n"
        + "  client_allowed_sans: [prometheus.example.com]\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        assert https_get(server, client_context(pki.server_ca, tls_dir, pki.client))[0] == 200
        assert fails_tls(server, client_context(pki.server_ca, tls_dir, pki.client_other_san))


def test_basic_auth_over_tls(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(tls_dir, SERVER_TLS + f"basic_auth_users:\n  alice: '{hash_password('wonderland')}'\n")
    with serving(WebConfigWatcher(path)) as server:
        ctx = client_context(pki.server_ca, tls_dir)
        status, _, headers = https_get(server, ctx)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="sigma-exporter"'
        assert https_get(server, ctx, {"Authorization": basic("alice", "nope")})[0] == 401
        assert https_get(server, ctx, {"Authorization": basic("alice", "wonderland")})[0] == 200


def test_plain_http_with_basic_auth_and_rate_limit(tmp_path: Path) -> None:
    path = write(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  bob: '{hash_password('builder')}'\nrate_limit: {{interval: 1h, burst: 2}}\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        host, port = server.server_address[:2]

        def get(headers: dict[str, str]) -> int:
            conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
            try:
                conn.request("GET", "/", headers=headers)
                return conn.getresponse().status
            finally:
                conn.close()

        assert get({}) == 401
        assert get({"Authorization": basic("bob", "builder")}) == 200
        assert get({"Authorization": basic("bob", "builder")}) == 429


def test_no_web_config_serves_plain_http_without_auth(tmp_path: Path) -> None:
    watcher = WebConfigWatcher(None)
    assert watcher.current().ssl_context is None
    assert watcher.reload()
    with serving(watcher) as server:
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
        try:
            conn.request("GET", "/")
            assert conn.getresponse().status == 200
        finally:
            conn.close()


def test_certificate_rotation_applies_to_new_connections(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(tls_dir, SERVER_TLS)
    watcher = WebConfigWatcher(path, check_interval=0.05)
    old_ca, new_ca = client_context(pki.server_ca, tls_dir), client_context(pki.other_server_ca, tls_dir)
    with serving(watcher) as server:
        assert https_get(server, old_ca)[0] == 200
        reloads = watcher.reloads_total
        write(tls_dir / "server.key", pki.other_server.key_pem)
        write(tls_dir / "server.crt", pki.other_server.cert_pem)
        wait_for(lambda: not fails_tls(server, new_ca), DEADLINE, what="the rotated certificate to be served")
        assert fails_tls(server, old_ca)
        assert watcher.last_reload_ok
        assert watcher.reloads_total > reloads


def reload_state(watcher: WebConfigWatcher) -> tuple[bool, str | None]:
    return watcher.last_reload_ok, watcher.last_error


def test_bad_new_file_keeps_the_last_good_one(
    tls_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    password_hash = hash_password("wonderland")
    path = web_yml(tls_dir, SERVER_TLS + f"basic_auth_users:\n  alice: '{password_hash}'\n")
    now = [0.0]
    watcher = WebConfigWatcher(path, check_interval=1.0, clock=lambda: now[0])
    good_time = watcher.last_reload_time
    caplog.set_level(logging.INFO, logger=LOGGER)
    ctx = client_context(pki.server_ca, tls_dir)
    auth = {"Authorization": basic("alice", "wonderland")}
    with serving(watcher) as server:
        web_yml(
            tls_dir,
            SERVER_TLS
            + "  client_auth_type: Sometimes\n"
            + f"basic_auth_users:\n  alice: '{password_hash}'\n",
        )
        for _ in range(3):  # three checks of the same bad file: one log line
            now[0] += 1.0
            assert https_get(server, ctx, auth)[0] == 200
            assert https_get(server, ctx)[0] == 401
        assert not watcher.last_reload_ok
        assert watcher.last_error is not None
        assert str(path) in watcher.last_error
        assert "tls_server_config.client_auth_type" in watcher.last_error
        assert watcher.last_reload_time == good_time
        errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert password_hash not in caplog.text

        # A certificate/key mismatch is bad too: the old certificate keeps being served.
        web_yml(tls_dir, SERVER_TLS + f"basic_auth_users:\n  alice: '{password_hash}'\n")
        write(tls_dir / "server.crt", pki.other_server.cert_pem)  # the key is still the old one
        now[0] += 1.0
        assert https_get(server, ctx, auth)[0] == 200
        assert not watcher.last_reload_ok
        assert "failed to load the certificate and key" in (watcher.last_error or "")
        assert "PRIVATE KEY" not in caplog.text

        # Fixed: new key too. The new certificate is served and the state is good again.
        write(tls_dir / "server.key", pki.other_server.key_pem)
        now[0] += 1.0
        new_ctx = client_context(pki.other_server_ca, tls_dir)
        assert https_get(server, new_ctx, auth)[0] == 200
        assert reload_state(watcher) == (True, None)
        assert watcher.last_reload_time > good_time
        assert watcher.reload_failures_total == 2
