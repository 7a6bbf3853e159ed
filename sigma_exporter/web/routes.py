"""The endpoints: /metrics, /, /-/healthy, /-/ready, /-/reload, /api/v1 (see `api/`), /report and the report
history (`reports.py`), and the middleware every request passes (read deadline for the body, rate limit,
basic auth, the web config's response headers, plain-text errors).

Scrapes only pick pre-rendered bytes from the published snapshot: they never wait on Sigma or on a file.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11

from sigma_exporter.metrics.exposition import (
    OM_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    ProcessPart,
    accepts_gzip,
    body_for,
    parts_for,
    wants_openmetrics,
)
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.web import stats as reasons
from sigma_exporter.web.api.handlers import PREFIX as API_PREFIX
from sigma_exporter.web.api.handlers import Api, bearer_matches
from sigma_exporter.web.api.handlers import error as api_error
from sigma_exporter.web.reports import Reports
from sigma_exporter.web.server import LimitedHandler, Limits
from sigma_exporter.web.stats import ServerStats
from sigma_exporter.web.statuspage import render_status_page
from sigma_exporter.web.webconfig import WebConfigSecurity

log = logging.getLogger(__name__)

API_ROOT: Final = "/api/"  # everything under it answers JSON, errors of unknown paths included
HEALTH_PATHS: Final = frozenset({"/-/healthy", "/-/ready"})
PLAIN: Final = "text/plain; charset=utf-8"
WRITE_SLICE_BYTES: Final = 256 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class FileReload:
    """The result of re-reading one file on /-/reload or SIGHUP; `error` is empty when it loaded."""

    what: str  # "config", "web config"
    path: str
    error: str = ""


def text(status: int, body: str, headers: dict[str, str] | None = None) -> web.Response:
    """A plain-text response."""
    return web.Response(status=status, body=body.encode(), headers={"Content-Type": PLAIN, **(headers or {})})


def failure(
    request: web.Request, status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error the middleware answers: the API's JSON error under /api/, plain text elsewhere."""
    if request.path.startswith(API_ROOT):
        return api_error(status, message, headers=headers)
    return text(status, message + ".\n", headers)


class Routes:
    """The endpoints and the middleware of the exporter's server. app.py builds it and calls `application`
    once; the handlers run on the server's event loop, with anything that blocks (bcrypt, reloads, the status
    page) in its thread pool."""

    def __init__(
        self,
        store: LatestSnapshot,
        live: ProcessPart,
        reload: Callable[[], list[FileReload]],
        security: WebConfigSecurity | None,
        stats: ServerStats,
        api: Api | None = None,
        reports: Reports | None = None,
    ) -> None:
        self.api = api
        self.reports = reports
        self.store = store
        self.live = live
        self.reload = reload
        self.security = security
        self.stats = stats
        self.max_body_bytes = 0

    def application(self, limits: Limits) -> web.Application:
        """The aiohttp application: every endpoint, the API's when there is one, the middleware and the
        response headers, with `limits`' body size."""
        self.max_body_bytes = limits.max_body_bytes
        app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[self.middleware])
        app.on_response_prepare.append(self.add_headers)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/", self.status_page)
        app.router.add_get("/-/healthy", self.healthy)
        app.router.add_get("/-/ready", self.ready)
        app.router.add_post("/-/reload", self.do_reload)
        app.router.add_put("/-/reload", self.do_reload)
        if self.api is not None:
            self.api.add_routes(app)
        if self.reports is not None:
            self.reports.add_routes(app)
        return app

    # -- every request ----------------------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request passes here: its head is complete (the read timer stops; the body must come by the
        same deadline), then the version, rate limit and basic auth checks, the body, the handler, and plain
        text for any error; after it the connection counts as idle again."""
        protocol = request.protocol
        deadline = protocol.request_started() if isinstance(protocol, LimitedHandler) else 0.0
        try:
            response = await self._guarded(request, handler, deadline)
        finally:
            if isinstance(protocol, LimitedHandler):
                protocol.request_finished()
        return response

    async def add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """Before any response's head is sent (streamed ones included): the web config's headers."""
        if self.security is not None:
            response.headers.update(self.security.extra_headers())
        response.headers["Server"] = "sigma-exporter"

    async def _guarded(self, request: web.Request, handler: Handler, deadline: float) -> web.StreamResponse:
        if request.version not in (HttpVersion10, HttpVersion11):
            self.stats.reject(reasons.VERSION)
            return failure(request, 505, "HTTP version not supported: use HTTP/1.1", {"Connection": "close"})
        security = self.security
        if security is not None:
            if not security.allow_request():
                self.stats.reject(reasons.RATE_LIMITED)
                return failure(request, 429, "Too many requests")
            if (
                security.watcher.current().config.users
                and not self._api_bearer(request)
                and not await asyncio.get_running_loop().run_in_executor(
                    None, security.authorised, request.path, request.headers.get("Authorization")
                )
            ):
                self.stats.reject(reasons.UNAUTHORIZED)
                return failure(
                    request, 401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="sigma-exporter"'}
                )
        try:
            if request.body_exists:
                await self._read_body(request, deadline)
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return failure(request, 405, f"Method {request.method} not allowed", {"Allow": allowed})
        except web.HTTPNotFound:
            where = f"{API_PREFIX}/openapi.json" if request.path.startswith(API_ROOT) else "/"
            return failure(request, 404, f"Not found. See {where} for the endpoints")
        except web.HTTPException as exc:
            return failure(
                request, exc.status, exc.reason, {"Connection": "close"} if exc.status >= 400 else None
            )
        except Exception as exc:  # a bug: answer, say so in one line, never a traceback on stderr
            log.error(
                "request failed unexpectedly", extra={"path": request.path, "error": type(exc).__name__}
            )
            return failure(request, 500, "Internal error")

    def _api_bearer(self, request: web.Request) -> bool:
        """A valid API token stands in for basic auth on /api/v1 (the API checks it again for writes)."""
        return (
            self.api is not None
            and request.path.startswith(API_PREFIX + "/")
            and bearer_matches(request.headers.get("Authorization"), self.api.token())
        )

    async def _read_body(self, request: web.Request, deadline: float) -> None:
        limit = self.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            self.stats.reject(reasons.TOO_LARGE)
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(request.read(), max(0.0, deadline - loop.time()) if deadline else None)
        except asyncio.TimeoutError:
            self.stats.reject(reasons.READ_TIMEOUT)
            raise web.HTTPRequestTimeout() from None
        except web.HTTPRequestEntityTooLarge:
            self.stats.reject(reasons.TOO_LARGE)
            raise

    # -- endpoints --------------------------------------------------------------------------------------
    async def metrics(self, request: web.Request) -> web.StreamResponse:
        """GET /metrics: the pre-rendered exposition in the format the Accept header prefers, gzipped when
        accepted; an uncompressed body is written in slices as the client takes them."""
        openmetrics = wants_openmetrics(request.headers.get("Accept"))
        compress = accepts_gzip(request.headers.get("Accept-Encoding"))
        rendered = self.store.current().rendered
        headers = {
            "Content-Type": OM_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE,
            "Vary": "Accept, Accept-Encoding",
        }
        if compress:
            headers["Content-Encoding"] = "gzip"
            return web.Response(
                body=body_for(rendered, self.live, openmetrics=openmetrics, compress=True), headers=headers
            )
        # Uncompressed, the body is large (13 MiB at 10,000 runs): write the pre-rendered parts in slices,
        # waiting for each to drain, instead of joining them and letting the transport buffer a copy.
        parts = parts_for(rendered, self.live, openmetrics=openmetrics)
        response = web.StreamResponse(headers=headers)
        response.content_length = sum(len(part) for part in parts)
        await response.prepare(request)
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), WRITE_SLICE_BYTES):
                await response.write(view[start : start + WRITE_SLICE_BYTES])
        await response.write_eof()
        return response

    async def status_page(self, request: web.Request) -> web.StreamResponse:
        """GET /: the HTML status page of the published snapshot, with every identity as its owner keeps it
        in the state store (any shard shows the same), rendered in the thread pool."""
        snapshot = self.store.current().snapshot
        stored = await self.reports.stored_identities() if self.reports is not None else None
        page = await asyncio.get_running_loop().run_in_executor(
            None,
            functools.partial(
                render_status_page,
                snapshot,
                stored=stored,
                unreadable=self.reports is not None and stored is None,
            ),
        )
        return web.Response(body=page.encode("utf-8"), headers={"Content-Type": "text/html; charset=utf-8"})

    async def healthy(self, request: web.Request) -> web.StreamResponse:
        """GET /-/healthy: 200 while the server answers."""
        return text(200, "Healthy.\n")

    async def ready(self, request: web.Request) -> web.StreamResponse:
        """GET /-/ready: 200 once the config is loaded and the restored state published, 503 before."""
        if self.store.current().snapshot.ready:
            return text(200, "Ready.\n")
        return text(503, "Not ready: the restored state is not published yet.\n")

    async def do_reload(self, request: web.Request) -> web.StreamResponse:
        """POST or PUT /-/reload: re-read the config and the web config (in the thread pool, waiting for the
        poll thread to publish the outcome); 200, or 500 naming each file that failed."""
        results = await asyncio.get_running_loop().run_in_executor(None, self.reload)
        return reload_reply(results)


def reload_reply(results: list[FileReload]) -> web.Response:
    """200 when every file loaded; otherwise 500, each failed file with its key and problem."""
    failed = [r for r in results if r.error]
    lines = [
        f"{r.what} {r.path}: " + (f"failed, the previous version stays: {r.error}" if r.error else "reloaded")
        for r in results
    ]
    head = "Reload failed.\n" if failed else "Reloaded.\n"
    return text(500 if failed else 200, head + "".join(f"{line}\n" for line in lines))
