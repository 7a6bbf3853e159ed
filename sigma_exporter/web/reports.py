"""Report identities and their history: `GET /api/v1/reports`, `GET /api/v1/reports/history` (JSON) and
`GET /report` (the identity's page, where an alert's `report_url` leads). They read the state store, which
every shard shares, in the server's thread pool: never on the event loop, and never from a scrape."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from sigma_exporter.metrics.links import PAGE_PATH
from sigma_exporter.runs.store import StateStore
from sigma_exporter.runs.store.records import History, IdentityRecord, StoreError
from sigma_exporter.web.api.handlers import PREFIX, error, reply
from sigma_exporter.web.api.history import identity_of_query, view_of_history, view_of_identity
from sigma_exporter.web.reportpage import render_not_found, render_report_page
from sigma_exporter.web.stats import STORE_UNREADABLE, ServerStats

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
UNREADABLE = "the state store cannot be read now; retry later"
RETRY = {"Retry-After": "5"}
READERS = 2  # store reads at once
T = TypeVar("T")
NAME_IT = "no report named: give report_group_id=G and/or report_id=R"


class Refused(Exception):
    """A request for a report the endpoints refuse: its status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Reports:
    """The report endpoints. Handlers run on the event loop and read the store in the thread pool. app.py
    builds it; `Routes.application` calls `add_routes` once."""

    def __init__(self, source: StateStore, stats: ServerStats, now: Callable[[], float]) -> None:
        self.source = source
        self.stats = stats  # a read the store refused counts as `store_unreadable`
        self.now = now  # the wall clock the page's "ago" is measured on (app.py: the runs' clock)
        # The server's thread pool also serves scrapes (basic auth): reads of a slow store take at most
        # READERS of its threads, however many pages are open.
        self._readers = asyncio.Semaphore(READERS)

    async def _read(self, call: Callable[..., T], *args: str) -> T:
        """`call(*args)` in the thread pool; a StoreError is logged, counted and raised again."""
        async with self._readers:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, call, *args)
            except StoreError as exc:
                self.stats.reject(STORE_UNREADABLE)
                log.warning("report history not read: the state store failed", extra={"error": str(exc)})
                raise

    def add_routes(self, app: web.Application) -> None:
        """Mount the endpoints on `app`."""
        app.router.add_get(f"{PREFIX}/reports", self.list_reports)
        app.router.add_get(f"{PREFIX}/reports/history", self.history)
        app.router.add_get(f"/{PAGE_PATH}", self.page)

    async def list_reports(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/reports: every identity held with its last success and last failure; 503 when the
        store cannot be read."""
        try:
            records = await self._read(self.source.identities)
        except StoreError:
            return error(503, UNREADABLE, headers=RETRY)
        return reply(200, {"reports": [view_of_identity(r) for r in records]})

    async def stored_identities(self) -> tuple[IdentityRecord, ...] | None:
        """Every identity as its owner keeps it, for the status page; None when the store cannot be read
        (logged and counted)."""
        try:
            return await self._read(self.source.identities)
        except StoreError:
            return None

    async def _lookup(self, request: web.Request) -> History:
        """The history of the identity the query names. Raises Refused: 400 for an id too long, 404 when the
        identity is not held (or none is named), 503 when the store cannot be read."""
        try:
            group, report = identity_of_query(request.query)
        except ValueError as exc:
            raise Refused(400, str(exc)) from None
        try:
            history = await self._read(self.source.history, group, report)
        except StoreError:
            raise Refused(503, UNREADABLE) from None
        if history is None:
            named = "no such report identity" if group or report else NAME_IT
            raise Refused(404, named)
        return history

    async def history(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/reports/history?report_group_id=G&report_id=R: the identity's last runs and judged
        expected times, newest first; 400 an id too long, 404 unknown or none named, 503 the store cannot be
        read."""
        try:
            history = await self._lookup(request)
        except Refused as refused:
            return error(refused.status, refused.message, headers=RETRY if refused.status == 503 else None)
        return reply(200, view_of_history(history))

    async def page(self, request: web.Request) -> web.StreamResponse:
        """GET /report?report_group_id=G&report_id=R: the identity's page (HTML)."""
        try:
            history = await self._lookup(request)
        except Refused as refused:
            if refused.status == 404:
                query = request.query
                body = render_not_found(
                    query.get("report_group_id", "")[:256], query.get("report_id", "")[:256]
                )
                return web.Response(status=404, body=body.encode("utf-8"), headers={"Content-Type": HTML})
            headers = RETRY if refused.status == 503 else None
            return web.Response(status=refused.status, text=f"{refused.message}\n", headers=headers)
        body = render_report_page(history, self.now())
        return web.Response(body=body.encode("utf-8"), headers={"Content-Type": HTML})
