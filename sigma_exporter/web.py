"""The HTTP face: /metrics, /-/healthy, /-/ready, /-/reload and the status page.

Scrapes only pick pre-rendered bytes from the published snapshot; they never wait on Sigma. Every reply
goes out in one write on a TCP_NODELAY socket.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final
from urllib.parse import urlsplit

from sigma_exporter.exposition import (
    OM_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ProcessPart,
    accepts_gzip,
    body_for,
    wants_openmetrics,
)
from sigma_exporter.statuspage import render_status_page
from sigma_exporter.store import SnapshotStore
from sigma_exporter.webconfig import TLSServerMixin, WebConfigSecurity

log = logging.getLogger(__name__)

HEALTH_PATHS: Final = frozenset({"/-/healthy", "/-/ready"})


class ListenAddressError(ValueError):
    pass


def parse_listen_address(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[V6]:PORT`."""
    host, sep, port_text = address.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenAddressError(f"invalid listen address {address!r}: expected HOST:PORT or :PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


@dataclass
class WebApp:
    store: SnapshotStore
    reload: Callable[[], tuple[bool, str]]
    process: ProcessPart
    security: WebConfigSecurity | None = None  # --web.config.file: TLS, basic auth, headers


class ExporterHandler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "sigma-exporter"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("http: " + format, *args, extra={"client": self.client_address[0]})

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", f"Content-Type: {content_type}"]
        lines.append(f"Content-Length: {len(body)}")
        security = self.server.app.security
        merged = {**(security.extra_headers() if security else {}), **(headers or {})}
        lines.extend(f"{name}: {value}" for name, value in merged.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    def _guard(self) -> str | None:
        """The request path when the request may proceed; otherwise replies 401 and returns None."""
        path = urlsplit(self.path).path
        security = self.server.app.security
        if security is not None and not security.allow_request():
            self._reply(429, b"Too many requests\n")
            return None
        if security is not None and not security.authorised(path, self.headers.get("Authorization")):
            self._reply(401, b"Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="sigma-exporter"'})
            return None
        return path

    def do_GET(self) -> None:
        path = self._guard()
        if path is None:
            return
        app = self.server.app
        if path == "/metrics":
            openmetrics = wants_openmetrics(self.headers.get("Accept"))
            compress = accepts_gzip(self.headers.get("Accept-Encoding"))
            body = body_for(
                app.store.current().rendered, app.process, openmetrics=openmetrics, compress=compress
            )
            headers = {"Vary": "Accept, Accept-Encoding"}
            if compress:
                headers["Content-Encoding"] = "gzip"
            self._reply(200, body, OM_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE, headers)
        elif path == "/-/healthy":
            self._reply(200, b"Healthy.\n")
        elif path == "/-/ready":
            if app.store.current().snapshot.cycles > 0:
                self._reply(200, b"Ready.\n")
            else:
                self._reply(503, b"Not ready: the first poll cycle has not finished.\n")
        elif path == "/":
            page = render_status_page(app.store.current().snapshot).encode("utf-8")
            self._reply(200, page, "text/html; charset=utf-8")
        elif path == "/-/reload":
            self._reply(405, b"Use POST to reload.\n", headers={"Allow": "POST, PUT"})
        else:
            self._reply(404, b"Not found. See / for the endpoints.\n")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        path = self._guard()
        if path is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        if path == "/-/reload":
            ok, error = self.server.app.reload()
            if ok:
                self._reply(200, b"Reloaded.\n")
            else:
                self._reply(500, f"Reload failed; the previous configuration stays: {error}\n".encode())
        elif path in ("/metrics", "/", *HEALTH_PATHS):
            self._reply(405, b"Method not allowed.\n", headers={"Allow": "GET, HEAD"})
        else:
            self._reply(404, b"Not found.\n")

    do_PUT = do_POST


class ExporterHTTPServer(TLSServerMixin, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: WebApp) -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        watcher = app.security.watcher if app.security is not None else None
        super().__init__(address, ExporterHandler, web_config_watcher=watcher)


def start_server(address: tuple[str, int], app: WebApp) -> tuple[ExporterHTTPServer, threading.Thread]:
    server = ExporterHTTPServer(address, app)
    thread = threading.Thread(target=server.serve_forever, name="sigma-web", daemon=True)
    thread.start()
    return server, thread
