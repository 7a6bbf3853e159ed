"""The threaded HTTP server the simulator runs on (its handler comes in from `server.py`)."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sigma_exporter.simulator.state import SimulatorState

log = logging.getLogger(__name__)


class SimulatorHTTPServer(ThreadingHTTPServer):
    """The threaded HTTP server under the simulator: it holds the simulator's state for the handlers and
    keeps track of open connections, so that a fault can drop them all at once."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-reply is logged at DEBUG; anything else gets socketserver's report."""
        # A client hanging up mid-reply (a timeout, a size cap, a reset fault) is routine here; anything
        # else still gets socketserver's traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("simulator: client %s went away mid-reply", client_address)
            return
        super().handle_error(request, client_address)

    def __init__(
        self, address: tuple[str, int], state: SimulatorState, handler: type[BaseHTTPRequestHandler]
    ) -> None:
        self.state = state
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection (for `drop_connections`), then serve it on a thread of its own."""
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Stop tracking the connection and close it."""
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
