"""The simulator's HTTP server: a threading server that can drop its connections, run in a background
thread by `Simulator`, with controls for tests."""

from __future__ import annotations

import logging
import ssl
import threading

from sigma_exporter.simulator.handler import SimulatorHandler
from sigma_exporter.simulator.httpserver import SimulatorHTTPServer
from sigma_exporter.simulator.scenario import (
    RunSpec,
    Scenario,
)
from sigma_exporter.simulator.state import API_PREFIX, SimulatorState

log = logging.getLogger(__name__)


class Simulator:
    """Runs the simulator in a background thread: `start()` binds and serves, `stop(timeout)` closes.
    `stop_listening()` makes Sigma unreachable (connections refused) until `start_listening()`, on the same
    port. Tests and the simulate and demo commands call these; the test controls below from any thread."""

    def __init__(
        self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.state = SimulatorState(scenario)
        self.host = host
        self.port = port
        self._tls = tls
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Where it answers (the port is known once it started)."""
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The `sigma.url` an exporter config takes."""
        return self.base_url + API_PREFIX

    def start(self) -> Simulator:
        """Bind (OSError if the address is taken) and serve on a thread; a second call does nothing."""
        if self._thread is not None:
            return self
        server = SimulatorHTTPServer((self.host, self.port), self.state, SimulatorHandler)
        self.port = server.server_address[1]
        if self._tls is not None:  # a failed handshake is an accept() error, which socketserver drops
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.state.closing.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.1,), name="sigma-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the socket and every connection; calls hanging in a `timeout` fault give up now."""
        self.state.closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def stop_listening(self) -> None:
        """Refuse connections until `start_listening()` (as a Sigma that went down)."""
        self.stop()

    def start_listening(self) -> None:
        """Listen again on the same port."""
        self.start()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------------------
    def set_faults(self, reset: bool = False, **changes: object) -> None:
        """Change the faults in force (`reset`: start from none). Any thread."""
        self.state.change_faults(dict(changes), reset)

    def set_status(self, reference: str, status: str, report_id: str = "") -> None:
        """Pin a run's status (of one member with `report_id`; `TIMELINE` unpins it). Any thread."""
        self.state.set_status(reference, status, report_id)

    def add_runs(self, runs: list[RunSpec]) -> None:
        """Make more runs known to the status API, started now. Any thread."""
        self.state.add_runs(runs)

    def stats(self) -> dict[str, object]:
        """Call statistics so far (see `SimulatorState.stats`). Any thread."""
        return self.state.stats()

    def expire_tokens(self) -> None:
        """Every issued access token dies now (fixed scenario tokens stay)."""
        with self.state.lock:
            fixed = set(self.state.scenario.credentials.tokens)
            for token in [t for t in self.state.tokens if t not in fixed]:
                del self.state.tokens[token]

    def reset_stats(self) -> None:
        """Count calls from zero again. Any thread."""
        self.state.reset_stats()
