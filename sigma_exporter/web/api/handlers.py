"""`/api/v1`: register, list, show and delete runs; the OpenAPI document. Writes are made durable by the
registry before the reply; they run in the executor, never on the event loop."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from sigma_exporter.config.secret import Secret
from sigma_exporter.metrics.latest import LatestSnapshot
from sigma_exporter.runs.registry import IdentitiesRefused, KindConflict, NotDeletable, Registry, RegistryFull
from sigma_exporter.runs.store.records import StoreError
from sigma_exporter.web.api.openapi import openapi_document
from sigma_exporter.web.api.parse import FieldError, parse_registration
from sigma_exporter.web.api.views import is_final, view_of_record, view_of_ref, view_of_state

PREFIX: Final = "/api/v1"
JSON: Final = "application/json"
WRITES_DISABLED: Final = (
    "writes to the API are disabled: set api.token_file in the config (then send "
    "'Authorization: Bearer TOKEN'), or basic_auth_users in --web.config.file"
)
STATES: Final = ("active", "final", "all")


def reply(status: int, document: object, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response: compact, keys sorted, one trailing newline."""
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode() + b"\n"
    return web.Response(status=status, body=body, headers={"Content-Type": JSON, **(headers or {})})


def error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error response, `{"error": message}`, with the field at fault when there is one."""
    document: dict[str, str] = {"error": message}
    if field is not None:
        document["field"] = field
    return reply(status, document, headers)


def bearer_matches(authorization: str | None, token: Secret | None) -> bool:
    """Constant time, whatever the header holds."""
    if token is None or not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("utf-8", "replace"), token.reveal().encode("utf-8"))


class Api:
    """The /api/v1 endpoints. Its handlers run on the web server's event loop; writes to the registry and the
    store go to the server's thread pool, reads come from the published snapshot and the registry's index.
    app.py builds it; `Routes.application` calls `add_routes` once."""

    def __init__(
        self,
        store: LatestSnapshot,
        registry: Registry,
        token: Callable[[], Secret | None],
        basic_users: Callable[[], bool],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.token = token
        self.basic_users = basic_users
        self.now = now  # the wall clock registrations are stamped with (app.py: the runs' clock)

    def add_routes(self, app: web.Application) -> None:
        """Mount the endpoints on `app` under /api/v1."""
        app.router.add_get(f"{PREFIX}/openapi.json", self.openapi)
        app.router.add_post(f"{PREFIX}/runs", self.register)
        app.router.add_get(f"{PREFIX}/runs", self.list_runs)
        # Any segment: aiohttp's default pattern refuses braces, and it decodes %2F only after matching.
        app.router.add_get(f"{PREFIX}/runs/{{reference:[^/]+}}", self.show)
        app.router.add_delete(f"{PREFIX}/runs/{{reference:[^/]+}}", self.delete)

    def _write_refused(self, request: web.Request) -> web.Response | None:
        """None when the request may write. Basic auth, when configured, was checked by the middleware."""
        token = self.token()
        users = self.basic_users()
        if token is None and not users:
            return error(403, WRITES_DISABLED)
        authorization = request.headers.get("Authorization")
        if bearer_matches(authorization, token):
            return None
        if users and authorization and authorization.lower().startswith("basic "):
            return None  # the middleware let it through: a valid user
        return error(
            401,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="sigma-exporter"'},
        )

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/openapi.json: the OpenAPI document."""
        return reply(200, openapi_document())

    async def register(self, request: web.Request) -> web.StreamResponse:
        """POST /api/v1/runs: 201 a new run once durable, 200 one already held with that kind; 401/403 without
        the right to write, 415 not JSON, 400 a bad field, 409 another kind, 429 full, 503 the store cannot
        write."""
        refused = self._write_refused(request)
        if refused is not None:
            return refused
        if request.content_type != JSON:
            self.registry.count_registered("api", "rejected")
            return error(415, f"send the run as {JSON}, got {request.content_type or 'no Content-Type'}")
        body = await request.read()
        try:
            ref = parse_registration(body, self.now())
        except FieldError as exc:
            self.registry.count_registered("api", "rejected")
            return error(400, str(exc), exc.field)
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, self.registry.register, ref)
        except RegistryFull as exc:
            return error(429, str(exc))
        except IdentitiesRefused as exc:
            return error(429, str(exc), exc.field)
        except KindConflict as exc:
            return error(409, str(exc), "kind")
        except StoreError:
            return error(
                503, "the state store cannot persist the run now; retry later", headers={"Retry-After": "5"}
            )
        view = self._view(result.ref.reference) or view_of_ref(result.ref)
        status = 201 if result.result == "created" else 200
        location = f"{PREFIX}/runs/{urllib.parse.quote(result.ref.reference, safe='')}"
        return reply(status, view, {"Location": location})

    def _view(self, reference: str) -> dict[str, Any] | None:
        # The registry first: a run deleted a moment ago is still in the snapshot until the next publish.
        held = self.registry.held(reference)
        if held is None:
            return None
        state = self.store.current().by_reference.get(reference)
        return view_of_state(state) if state is not None else view_of_ref(held)

    async def list_runs(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/runs?state=active|final|all: the published runs and those just registered, by
        registration time."""
        state = request.query.get("state", "all")
        if state not in STATES:
            return error(400, f"state should be one of {', '.join(STATES)}, got {state[:32]!r}", "state")
        held = self.registry.all_held()  # not a run deleted since the snapshot was published
        states = [s for s in self.store.current().snapshot.references if s.ref.reference in held]
        views = [view_of_state(s) for s in states]
        shown = {s.ref.reference for s in states}
        views += [view_of_ref(ref) for reference, ref in held.items() if reference not in shown]
        if state != "all":
            views = [v for v in views if is_final(v) == (state == "final")]
        views.sort(key=lambda v: (v["registered_at"] or 0.0, v["reference"]))
        return reply(200, {"runs": views})

    async def show(self, request: web.Request) -> web.StreamResponse:
        """GET /api/v1/runs/{reference}: the run, from the snapshot, the registry or (held by another shard)
        the shared store; 404 when none knows it."""
        reference = request.match_info["reference"]
        view = self._view(reference)
        if view is None and not self.registry.owns(reference):
            record = await asyncio.get_running_loop().run_in_executor(None, self.registry.lookup, reference)
            view = view_of_record(record) if record is not None else None
        if view is None:
            return error(404, f"no run {reference[:256]}")
        return reply(200, view)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """DELETE /api/v1/runs/{reference}: 204 once deleted in the store, 404 none held, 409 not an api run,
        401/403 without the right to write, 503 the store cannot write."""
        refused = self._write_refused(request)
        if refused is not None:
            return refused
        reference = request.match_info["reference"]
        try:
            held = await asyncio.get_running_loop().run_in_executor(None, self.registry.delete, reference)
        except NotDeletable as exc:
            return error(409, str(exc))
        except StoreError:
            return error(
                503, "the state store cannot delete the run now; retry later", headers={"Retry-After": "5"}
            )
        if held is None:
            return error(404, f"no run {reference[:256]}")
        return web.Response(status=204)
