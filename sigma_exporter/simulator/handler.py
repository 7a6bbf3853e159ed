"""The simulator's request handler: /generate-token, /generate, /report-status under the API prefix, plus
/_sim/* admin endpoints for tests (stats, faults, statuses, new runs). `POST /_sim/faults` takes a JSON
object of `Faults` fields to change (`"reset": true` starts from none), `generate_faults` included.

Replies reproduce the vendor samples' quirks: stray spaces, lowercase `replyType` on tokens, `statusCode`
as a string in status replies and an integer in run replies. Each reply is written with one send on a
TCP_NODELAY socket (headers and body apart would meet Nagle's algorithm and delayed ACKs: ~40 ms a call).
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlsplit

from sigma_exporter.config.walker import Section
from sigma_exporter.sigma.actions import (
    EXEC_REPORT_GROUP,
    GENERATE_TOKEN,
    GROUP_CHECK,
    REPORT_CHECK,
    RUN_REPORT,
)
from sigma_exporter.simulator.faults import GenerateFault, take_generate_fault
from sigma_exporter.simulator.scenario import (
    Faults,
    ReportSpec,
    RunSpec,
    TimelineStep,
    parse_runs,
)
from sigma_exporter.simulator.state import (
    API_PREFIX,
    Run,
    Token,
    failure,
    group_body,
    report_body,
    run_started_body,
)

if TYPE_CHECKING:
    from sigma_exporter.simulator.httpserver import SimulatorHTTPServer

log = logging.getLogger(__name__)

HTML_PAGE: Final = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>"
)


class SimulatorHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests as Sigma would, with the scenario's quirks and faults. Runs on the
    server's thread for that connection; the shared state is behind its lock."""

    server: SimulatorHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "SigmaSimulator/1.0"

    arrived = 0.0  # monotonic time the current request's line was read

    def setup(self) -> None:
        """Turn Nagle's algorithm off for the connection (replies go out in one send)."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def parse_request(self) -> bool:
        """Note when the request arrived (latency faults count from it), then parse it."""
        self.arrived = time.monotonic()
        return super().parse_request()

    def log_message(self, format: str, *args: object) -> None:
        """Access lines at DEBUG through logging, not on stderr."""
        log.debug("simulator: " + format, *args)

    # -- plumbing ------------------------------------------------------------------------------------
    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", *, close: bool = False
    ) -> None:
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        head.append(f"Content-Type: {content_type}")
        if status != 204:
            head.append(f"Content-Length: {len(body)}")
        if close:
            head.append("Connection: close")
            self.close_connection = True
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body if status != 204 else b"")
        self.wfile.write(payload)

    def _json(self, status: int, document: object) -> None:
        self._send(status, json.dumps(document).encode())

    def _reset(self) -> None:
        """Drop the connection with a TCP RST, as an unreachable or crashing server does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _params(self) -> dict[str, str]:
        """Parameters from a JSON body first, then a form body, then the query string; a scenario's
        `params_accepted` makes this Sigma read only the body or only the query string."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        params: dict[str, str] = {}
        source = "query"
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                document = json.loads(text)
                if isinstance(document, dict):
                    params = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in document.items()}
                    source = "body"
            except json.JSONDecodeError:
                params = dict(parse_qsl(text))
                source = "form"
        accepted = self.server.state.scenario.params_accepted
        if accepted == "query":
            params = {}
        if accepted != "body":
            for key, value in parse_qsl(urlsplit(self.path).query):
                params.setdefault(key, value)
        with self.server.state.lock:
            self.server.state.param_sources[source] += 1
        return params

    # -- routing -------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        """GET /_sim/stats (`?brief=1` without the per-reference counts) and /-/healthy; 404 otherwise."""
        path = urlsplit(self.path).path
        if path == "/_sim/stats":
            brief = dict(parse_qsl(urlsplit(self.path).query)).get("brief", "") not in ("", "0", "false")
            self._json(200, self.server.state.stats(brief))
        elif path == "/-/healthy":
            self._send(200, b"ok", "text/plain")
        else:
            self._json(404, failure(404, "SIG-404", "no such endpoint"))

    def do_POST(self) -> None:
        """The API calls under the prefix (token, start, status) with the faults in force, and the /_sim/
        admin calls."""
        path = urlsplit(self.path).path
        with self.server.state.lock:
            self.server.state.request_targets.append(self.path)
        if path.startswith("/_sim/"):
            self._admin(path)
            return
        if not path.startswith(API_PREFIX + "/"):
            self._json(404, failure(404, "SIG-404", "no such endpoint"))
            return
        endpoint = path[len(API_PREFIX) + 1 :]
        state = self.server.state
        faults = state.faults
        if faults.down:
            self._reset()
            return
        params = self._params()
        action = params.get("action", "")
        with state.lock:
            state.calls[action or endpoint] += 1
        if faults.unauthorized:
            self._json(401, failure(401, "SIG-AUTH-401", "Unauthorized API"))
        elif endpoint == "generate-token":
            self._generate_token(params)
        elif endpoint == "generate":
            self._generate(params)
        elif endpoint == "report-status":
            self._report_status(params, faults)
        else:
            self._json(404, failure(404, "SIG-404", "no such endpoint"))

    # -- API ---------------------------------------------------------------------------------------------
    def _generate_token(self, params: dict[str, str]) -> None:
        state = self.server.state
        creds = state.scenario.credentials
        auth_type = params.get("authType", "").upper()
        if params.get("action") != GENERATE_TOKEN:
            self._json(400, failure(400, "SIG-400", "action must be GENERATE_TOKEN"))
            return
        if auth_type == "APIKEY":
            secret = params.get("clientToken", params.get("clitentToken", ""))
            ok = (params.get("clientId", ""), secret) in creds.apikeys
        elif auth_type == "BASIC":
            ok = (params.get("username", ""), params.get("password", "")) in creds.basic
        else:
            self._json(400, failure(400, "SIG-400", "unsupported authType"))
            return
        if not ok:
            self._json(401, failure(401, "SIG-AUTH-401", "Unauthorized API"))
            return
        token = f"sim{uuid.uuid4()}"
        every = state.faults.token_expire_every_calls
        with state.lock:
            state.tokens[token] = Token(time.monotonic() + state.scenario.token_ttl_seconds, every or None)
        self._json(
            200, {"headerMap": {"replyType": "success", "success": "true", "accessToken": f" {token} "}}
        )

    def _authorised(self, params: dict[str, str]) -> bool:
        state = self.server.state
        token = params.get("accessToken", "").strip()
        with state.lock:
            entry = state.tokens.get(token)
            if entry is None:
                return False
            if entry.expires is not None and time.monotonic() > entry.expires:
                del state.tokens[token]
                return False
            if entry.calls_left is not None:
                if entry.calls_left <= 0:
                    del state.tokens[token]
                    return False
                entry.calls_left -= 1
        return True

    def _generate(self, params: dict[str, str]) -> None:
        state = self.server.state
        if not self._authorised(params):
            self._json(401, failure(401, "SIG-AUTH-401", "Unauthorized API"))
            return
        action = params.get("action", "")
        if action not in (RUN_REPORT, EXEC_REPORT_GROUP):
            self._json(400, failure(400, "SIG-400", "action must be RUN_REPORT or EXEC_REPORT_GROUP"))
            return
        is_group = action == EXEC_REPORT_GROUP
        ident = (params.get("reportGroupId") if is_group else None) or params.get("reportId") or ""
        ident = ident.strip()
        with state.lock:
            fault = take_generate_fault(
                state.faults.generate_faults, state.generate_fault_uses, action, ident
            )
        if fault is not None:
            self._generate_fault(fault)
            return
        reference = f"sim{uuid.uuid4()}"
        if is_group:
            members = dict(state.scenario.definitions_groups).get(ident) or (
                ReportSpec(
                    f"{ident}-1", "Member1", (TimelineStep("GENERATED", 3), TimelineStep("PUBLISHED"))
                ),
            )
            spec = RunSpec(reference, "group", members, report_group_id=ident)
        else:
            report = dict(state.scenario.definitions_reports).get(ident) or ReportSpec(
                ident,
                ident or "Report",
                (TimelineStep("PENDING", 2), TimelineStep("GENERATED", 3), TimelineStep("PUBLISHED")),
            )
            spec = RunSpec(reference, "report", (report,))
        with state.lock:
            state.runs[reference] = Run(spec, time.monotonic())
            state.filters[reference] = params.get("reportFilter")
        self._json(200, run_started_body(is_group, ident, reference))

    def _generate_fault(self, fault: GenerateFault) -> None:
        """A start call a `generate_faults` rule took: no run starts."""
        if fault.fault == "http_500":
            self._json(500, failure(500, "SIG-500", "Server encountered an unexpected condition"))
        elif fault.fault == "failure":
            self._json(200, failure(200, fault.error_code, fault.error_msg))
        else:  # timeout: no reply; the wait ends early when the simulator stops
            self.server.state.closing.wait(fault.seconds)
            self.close_connection = True

    def _report_status(self, params: dict[str, str], faults: Faults) -> None:
        state = self.server.state
        reference = params.get("referenceNumber", params.get("ReferenceNumber", "")).strip()
        action = params.get("action", "")
        with state.lock:
            state.by_reference[reference] += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            delay = faults.latency_seconds
            if faults.latency_jitter_seconds:
                with state.lock:
                    delay += state.random.uniform(0, faults.latency_jitter_seconds)
            # The latency counts from the request's arrival, so the simulator's own work on the call does
            # not add to it (benchmarks compare cycle times with N x latency / concurrency).
            delay -= time.monotonic() - self.arrived
            if delay > 0:
                time.sleep(delay)
            self._answer_status(action, reference, params, faults)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer_status(self, action: str, reference: str, params: dict[str, str], faults: Faults) -> None:
        state = self.server.state
        if not self._authorised(params):
            self._json(401, failure(401, "SIG-AUTH-401", "Unauthorized API"))
            return
        special = faults.references.get(reference)
        if special == "400":
            self._json(400, failure(400, "SIG-REF-400", "invalid reference number"))
            return
        if special == "500" or state.chance(faults.error_rate):
            self._json(500, failure(500, "SIG-500", "Server encountered an unexpected condition"))
            return
        if special == "html" or state.chance(faults.html_rate):
            self._send(200, HTML_PAGE, "text/html")
            return
        if special == "garbage" or state.chance(faults.malformed_rate):
            self._send(200, b'{"headerMap": {"replyType": "SUCCESS", "reportStatus": NOTIFIED,,}')
            return
        if special == "wrong_types":
            self._json(200, {"headerMap": {"replyType": "SUCCESS", "reportStatus": ["NOTIFIED"]}})
            return
        with state.lock:
            run = state.runs.get(reference)
        expected = "group" if action == GROUP_CHECK else "report"
        if action not in (REPORT_CHECK, GROUP_CHECK):
            self._json(400, failure(400, "SIG-400", "unknown action"))
            return
        if run is None or run.spec.kind != expected:
            self._json(400, failure(400, "SIG-REF-400", "invalid reference number"))
            return
        now = time.monotonic()
        header = report_body(run, now) if expected == "report" else group_body(run, now)
        if header is None:
            if faults.bare_204:
                self._send(204, b"")
            else:
                self._json(
                    200, {"headerMap": {"replyType": "SUCCESS", "success": "true", "statusCode": "204"}}
                )
            return
        if special == "huge" or faults.huge_reply_bytes:
            header = {**header, "padding": "x" * (faults.huge_reply_bytes or 8 * 1024 * 1024)}
        body = json.dumps({"headerMap": header}).encode()
        if special == "truncated" or state.chance(faults.truncated_rate):
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            self.wfile.write(head.encode() + body[: len(body) // 2])
            self._reset()
            return
        if special == "slow" or faults.slow_body_seconds:
            self._trickle(body, faults.slow_body_seconds or 30.0)
            return
        self._send(200, body)

    def _trickle(self, body: bytes, seconds: float) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode())
        pieces = max(1, min(len(body), 50))
        step = max(1, len(body) // pieces)
        pause = seconds / pieces
        try:
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                time.sleep(pause)
        except OSError:
            self.close_connection = True

    # -- admin ---------------------------------------------------------------------------------------
    def _admin(self, path: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        try:
            document = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(document, dict):
                raise ValueError("expected a JSON object")
            if path == "/_sim/faults":
                reset = bool(document.pop("reset", False))
                state.change_faults(document, reset)
            elif path == "/_sim/set-status":
                state.set_status(
                    str(document["reference"]), str(document["status"]), str(document.get("report_id", ""))
                )
            elif path == "/_sim/runs":
                state.add_runs(parse_runs(Section(document, "", "runs")))
            elif path == "/_sim/reset-stats":
                state.reset_stats()
            else:
                self._json(404, {"error": "no such admin endpoint"})
                return
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, {"ok": True})
