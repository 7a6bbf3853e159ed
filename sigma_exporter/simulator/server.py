"""The simulator's HTTP server: a threading server that can drop its connections, run in a background
thread by `Simulator`, with controls for tests."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from sigma_exporter.simulator.handler import SimulatorHandler
from sigma_exporter.simulator.scenario import (
    RunSpec,
    Scenario,
)
from sigma_exporter.simulator.state import API_PREFIX, SimulatorState

log = logging.getLogger(__name__)


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-reply (a timeout, a size cap, a reset fault) is routine here; anything
        # else still gets socketserver's traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("simulator: client %s went away mid-reply", client_address)
            return
        super().handle_error(request, client_address)

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        self.state = state
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SimulatorHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Close every open keep-alive connection, as a crashed or unplugged server would."""
        with self._connections_lock:
            connections = list(self.connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Simulator:
    """Runs the simulator in a background thread. `stop_listening()` makes Sigma unreachable (connections
    refused) until `start_listening()`, on the same port."""

    def __init__(
        self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.state = SimulatorState(scenario)
        self.host = host
        self._server: SimulatorHTTPServer | None = SimulatorHTTPServer((host, port), self.state)
        self.port = self._server.server_address[1]
        self._tls = tls
        self._wrap()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The `sigma.url` an exporter config takes."""
        return self.base_url + API_PREFIX

    def start(self) -> Simulator:
        assert self._server is not None
        self.state.closing.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="sigma-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.closing.set()  # a call hanging in a `timeout` fault gives up now
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def stop_listening(self) -> None:
        self.stop()

    def start_listening(self) -> None:
        self._server = SimulatorHTTPServer((self.host, self.port), self.state)
        self._wrap()
        self.start()

    def _wrap(self) -> None:
        """HTTPS when given a context: a failed handshake is an accept() error, which socketserver drops."""
        if self._tls is not None and self._server is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------------------
    def set_faults(self, reset: bool = False, **changes: object) -> None:
        self.state.change_faults(dict(changes), reset)

    def set_status(self, reference: str, status: str, report_id: str = "") -> None:
        self.state.set_status(reference, status, report_id)

    def add_runs(self, runs: list[RunSpec]) -> None:
        self.state.add_runs(runs)

    def stats(self) -> dict[str, object]:
        return self.state.stats()

    def expire_tokens(self) -> None:
        """Every issued access token dies now (fixed scenario tokens stay)."""
        with self.state.lock:
            fixed = set(self.state.scenario.credentials.tokens)
            for token in [t for t in self.state.tokens if t not in fixed]:
                del self.state.tokens[token]

    def reset_stats(self) -> None:
        self.state.reset_stats()
