"""The HTTP server: aiohttp's event-loop HTTP/1.1 server on a thread of its own, with the limits a public
endpoint needs.

- One event loop holds every connection; handlers see only complete request heads. Blocking work (bcrypt,
  reloads) goes to a small bounded thread pool, so threads never grow with connections.
- At most `max_connections` connections are open; more are closed as soon as they are accepted.
- A request must be complete (head and body) within `read_timeout` of its first byte, or the connection
  is closed; a connection with no request in flight is closed after `idle_timeout`.
- Header lines, header count and body size are capped; anything that is not HTTP/1.0 or 1.1 gets 400 or
  505, through the redacting logger, never a traceback.
- With TLS (the web config), each connection's first byte is peeked: a TLS handshake gets the watcher's
  current SSL context (so renewed certificates apply at the next handshake), plain HTTP gets a short 400.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import resource
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import BadStatusLine

from sigma_exporter.web import stats as reasons
from sigma_exporter.web.stats import ServerStats
from sigma_exporter.web.webconfig import WebConfigWatcher, client_sans_allowed
from sigma_exporter.web.webconfig.tls import ssl_problem_of

log = logging.getLogger(__name__)

TLS_RECORD_HANDSHAKE: Final = 0x16
PLAIN_HTTP_REPLY: Final = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)
ERROR_TEXT: Final = {
    400: "Bad request.\n",
    413: "Request body too large.\n",
    505: "HTTP version not supported: use HTTP/1.1.\n",
}


@dataclass(frozen=True)
class Limits:
    """The server's bounds: read and idle timeouts, open connections, the thread pool for blocking work, body
    and header sizes, the TLS handshake's time."""

    read_timeout: float = 30.0
    idle_timeout: float = 120.0
    max_connections: int = 4096
    workers: int = 4
    max_body_bytes: int = 64 * 1024
    max_line_bytes: int = 8190  # a request line or one header line
    max_headers: int = 100
    tls_handshake_timeout: float = 10.0


class LimitedHandler(web.RequestHandler):
    """aiohttp's connection protocol, plus the read timeout, the client SAN check and our error replies.
    One per connection, on the server's event loop."""

    def __init__(self, manager: web.Server, *, gate: Gate, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.gate = gate
        self._read_timer: asyncio.TimerHandle | None = None
        self.read_deadline = 0.0
        self._busy = False
        self._refused = False
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A new connection (after its TLS handshake): refused at once when its client certificate has none of
        `client_allowed_sans`, else counted as open."""
        tls = self.gate.tls_config()
        if tls is not None and not client_sans_allowed(tls, transport.get_extra_info("peercert")):
            self._refused = True
            self.gate.stats.reject(reasons.TLS_HANDSHAKE)
            log.debug("TLS handshake refused: client certificate has none of client_allowed_sans")
            assert isinstance(transport, asyncio.Transport)
            transport.abort()
            return
        self._counted = True
        self.gate.stats.open_connections += 1
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Uncount the connection and drop its read timer."""
        if self._counted:
            self._counted = False
            self.gate.stats.open_connections -= 1
        self._cancel_read_timer()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Bytes from the client: the first ones of a request start its read timer."""
        if self._refused:
            return
        if data and self._read_timer is None and not self._busy:
            self.read_deadline = self._loop.time() + self.gate.limits.read_timeout
            self._read_timer = self._loop.call_at(self.read_deadline, self._read_timed_out)
        super().data_received(data)

    def request_started(self) -> float:
        """Called by the middleware once a request head is complete; returns the deadline for its body."""
        self._busy = True
        self._cancel_read_timer()
        return self.read_deadline

    def request_finished(self) -> None:
        """Called by the middleware once the response is done: the connection is idle again."""
        self._busy = False

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        self.gate.stats.reject(reasons.READ_TIMEOUT)
        log.debug("HTTP request not complete within the read timeout; connection closed")
        self.force_close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The parser's verdicts (400, 413, 505) as short fixed replies: the raw input is never echoed
        back or logged (it may hold an Authorization header)."""
        if isinstance(exc, BadStatusLine) and "HTTP version" in str(exc):
            status = 505
        reason = {400: reasons.MALFORMED, 413: reasons.TOO_LARGE, 505: reasons.VERSION}.get(status)
        if reason is not None:
            self.gate.stats.reject(reason)
        log.debug("HTTP request rejected", extra={"status": status, "problem": type(exc).__name__})
        if request.writer.output_size > 0:
            raise ConnectionError("reply already started")
        response = web.Response(status=status, text=ERROR_TEXT.get(status, "Internal error.\n"))
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """A connection error, logged as one line with its type only (never a traceback: it may quote the
        request)."""
        exc = kwargs.get("exc_info")
        problem = type(exc).__name__ if isinstance(exc, BaseException) else "error"
        log.warning("HTTP connection error", extra={"problem": problem})


class Gate:
    """What every connection of one server shares: limits, counters, the TLS policy in force. Used on the
    server's event loop."""

    def __init__(self, limits: Limits, stats: ServerStats, watcher: WebConfigWatcher | None) -> None:
        self.limits = limits
        self.stats = stats
        self.watcher = watcher

    def ssl_context(self) -> Any:
        """The SSL context in force for the next handshake; None without TLS."""
        return self.watcher.current().ssl_context if self.watcher is not None else None

    def tls_config(self) -> Any:
        """The TLS settings in force (for the client SAN check); None without TLS."""
        return self.watcher.current().config.tls if self.watcher is not None else None


class WebServer:
    """The HTTP server of the exporter. app.py calls `start` (binds, raising OSError at once, and serves on a
    thread of its own) and `stop` (closes every connection)."""

    def __init__(
        self,
        app: web.Application,
        address: tuple[str, int],
        *,
        limits: Limits | None = None,
        stats: ServerStats | None = None,
        watcher: WebConfigWatcher | None = None,
    ) -> None:
        self.app = app
        self.address = address
        self.limits = limits or Limits()
        self.stats = stats or ServerStats()
        self.gate = Gate(self.limits, self.stats, watcher)
        self.server_address: tuple[str, int] = address
        self._sock: socket.socket | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop  # made by start(): an event loop owns sockets too
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="sigma-web", daemon=True)
        self._started = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._adopting = 0  # accepted, not yet handed to a protocol

    @property
    def tls_handshake_failures(self) -> int:
        """TLS handshakes that failed or were refused."""
        return self.stats.tls_handshake_failures

    def start(self) -> WebServer:
        """Bind (OSError when the address cannot be had) and serve."""
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self._sock = socket.create_server(self.address, family=family, backlog=512)
        self._sock.setblocking(False)
        self.server_address = self._sock.getsockname()[:2]
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.limits.workers, thread_name_prefix="sigma-web-worker"
        )
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(self._executor)
        self._thread.start()
        if not self._started.wait(10):
            raise OSError("the HTTP server did not start")
        return self

    def stop(self, timeout: float = 1.0) -> None:
        """Close the socket and every connection, waiting at most `timeout` for open requests."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def call(self, func: Callable[[], Any]) -> None:
        """Run `func` on the server's loop (tests, and counters that must be touched there)."""
        self._loop.call_soon_threadsafe(func)

    # -- the loop thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        limits = self.limits
        manager = runner.server
        assert manager is not None

        def protocol() -> LimitedHandler:
            return LimitedHandler(
                manager,
                gate=self.gate,
                loop=self._loop,
                keepalive_timeout=limits.idle_timeout,
                access_log=None,
                max_line_size=limits.max_line_bytes,
                max_field_size=limits.max_line_bytes,
                max_headers=limits.max_headers,
                lingering_time=1.0,
            )

        accept = asyncio.ensure_future(self._accept(protocol))
        self._started.set()
        try:
            await self._stopped.wait()
        finally:
            accept.cancel()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner.shutdown(), 0.5)
            for handler in manager.connections:
                handler.force_close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner.cleanup(), 0.5)

    async def _accept(self, protocol: Callable[[], LimitedHandler]) -> None:
        loop = self._loop
        sock = self._sock
        assert sock is not None
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and friends: say so, breathe, go on
                log.warning("cannot accept a connection", extra={"error": exc.strerror or str(exc)})
                await asyncio.sleep(0.1)
                continue
            if self.stats.open_connections + self._adopting >= self.limits.max_connections:
                self.stats.reject(reasons.CONNECTION_LIMIT)
                conn.close()
                continue
            conn.setblocking(False)
            self._adopting += 1
            task = loop.create_task(self._adopt(conn, protocol))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _adopt(self, conn: socket.socket, protocol: Callable[[], LimitedHandler]) -> None:
        loop = self._loop
        context = None
        try:
            context = self.gate.ssl_context()
            if context is None:
                await loop.connect_accepted_socket(protocol, sock=conn)
                return
            first = await self._peek(conn, self.limits.tls_handshake_timeout)
            if first and first[0] == TLS_RECORD_HANDSHAKE:
                await loop.connect_accepted_socket(
                    protocol,
                    sock=conn,
                    ssl=context,
                    ssl_handshake_timeout=self.limits.tls_handshake_timeout,
                )
                return
            if first:
                await self._answer_plain_http(conn)
            self._handshake_failed("HTTP_REQUEST" if first else "no TLS handshake")
            conn.close()
        except (OSError, asyncio.TimeoutError) as exc:
            if context is not None:
                self._handshake_failed(ssl_problem_of(exc))
            conn.close()
        finally:
            self._adopting -= 1  # from here on it is counted in open_connections, or gone

    def _handshake_failed(self, problem: str) -> None:
        self.stats.reject(reasons.TLS_HANDSHAKE)
        log.debug("TLS handshake failed: %s", problem)

    async def _peek(self, conn: socket.socket, timeout: float) -> bytes:
        """The first byte the client sent, without taking it off the socket (b"" if it hung up or was
        silent for `timeout`)."""
        loop = self._loop
        deadline = loop.time() + timeout
        while True:
            try:
                return conn.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                pass
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(conn.fileno(), _resolve, ready)
            try:
                await asyncio.wait_for(ready, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return b""
            finally:
                loop.remove_reader(conn.fileno())

    async def _answer_plain_http(self, conn: socket.socket) -> None:
        """Tell a plain HTTP client what went wrong; drain what it sent so that closing does not reset the
        connection (and lose the answer). Bounded in time and size."""
        loop = self._loop
        await asyncio.wait_for(loop.sock_sendall(conn, PLAIN_HTTP_REPLY), 1.0)
        conn.shutdown(socket.SHUT_WR)

        async def drain() -> None:
            received = 0
            while received < 65536:
                chunk = await loop.sock_recv(conn, 4096)
                if not chunk:
                    return
                received += len(chunk)

        with contextlib.suppress(asyncio.TimeoutError, OSError):
            await asyncio.wait_for(drain(), 1.0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (as Go programs do), so that the connection cap,
    not the file table, is what bounds connections. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
        return hard
    return soft
