"""Transport to the Sigma reports API: tokens, status checks, timeouts, size caps, call statistics.

Parsing lives in `replies` (pure); this module only moves bytes and turns transport failures into typed
errors whose messages we write ourselves, because the HTTP library's exceptions carry full URLs (and with
`params_in: query`, the access token in them).

The transport is a urllib3 pool used directly: requests' per-call machinery (settings merged from the
environment, a stat of ~/.netrc, hooks, cookies) cost more CPU than the rest of a check together. What
requests took from the environment is resolved once, when the client is built, the way requests does it:
HTTP(S)_PROXY / NO_PROXY, and REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE before certifi's bundle (`pool.py`).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final, Protocol, TypeVar
from urllib.parse import urlencode, urlsplit

import urllib3

from sigma_exporter import __version__
from sigma_exporter.config.model import AuthConfig, SigmaConfig
from sigma_exporter.sigma.actions import (
    EXEC_REPORT_GROUP,
    GENERATE_TOKEN,
    GROUP_CHECK,
    REPORT_CHECK,
    RUN_REPORT,
)
from sigma_exporter.sigma.errors import (
    BadRequestError,
    ReplyTooLargeError,
    SigmaConnectionError,
    SigmaError,
    SigmaTimeoutError,
    SigmaTLSError,
    TruncatedReplyError,
    UnauthorizedError,
)
from sigma_exporter.sigma.pool import pool_manager
from sigma_exporter.sigma.replies import (
    GroupReply,
    ReportReply,
    parse_group_reply,
    parse_report_reply,
    parse_start_reply,
    parse_token_reply,
)

log = logging.getLogger(__name__)


class _NoQueryStrings(logging.Filter):
    """urllib3 logs each request line at DEBUG, query string included: keep the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(a.split("?", 1)[0] if isinstance(a, str) else a for a in record.args)
        return True


_pool_log = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _NoQueryStrings) for f in _pool_log.filters):
    _pool_log.addFilter(_NoQueryStrings())

#: After a failed token request, callers within this many seconds get the same error without a call.
TOKEN_FAILURE_HOLD_SECONDS: Final = 2.0

T = TypeVar("T")


class ExchangeHook(Protocol):
    """Sees every exchange with Sigma that got an HTTP reply: the action, the parameters sent (secrets
    included: a hook that keeps them must redact them), the reply's status, headers and body."""

    def __call__(
        self, action: str, params: Mapping[str, object], status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        """See one exchange; called on the thread that made the call, so a hook must be thread-safe."""


class CallObserver(Protocol):
    """Told of every call the client makes (ApiStats): the metrics' latency, requests and errors."""

    def observe(self, action: str, code: str, seconds: float, error_reason: str | None) -> None:
        """One call: its action, HTTP status (`error` when none came back), duration, and error reason (None
        when it succeeded or failed as expected). Called from any thread."""


class TokenProvider:
    """One access token shared by every thread, renewed at most once per 401 (no stampede).

    The lock is held while a token is fetched, so concurrent callers wait for that one request.
    """

    def __init__(self, fetch: Callable[[float], str] | None, fixed: str | None = None) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        self._token: str | None = fixed
        self._generation = 0
        self._failure: SigmaError | None = None
        self._failed_at = 0.0

    @property
    def renewable(self) -> bool:
        """The token comes from GENERATE_TOKEN (not a fixed `token`), so a 401 can be answered with a new
        one."""
        return self._fetch is not None

    def get(self, timeout: float) -> tuple[str, int]:
        """The token in force and its generation, fetched first when there is none (others wait for that
        fetch); a fetch that failed within `TOKEN_FAILURE_HOLD_SECONDS` is raised again without a call. Any
        thread."""
        with self._lock:
            if self._token is None:
                assert self._fetch is not None
                now = time.monotonic()
                if self._failure is not None and now - self._failed_at < TOKEN_FAILURE_HOLD_SECONDS:
                    raise copy.copy(self._failure)
                try:
                    self._token = self._fetch(timeout)
                except SigmaError as exc:
                    self._failure, self._failed_at = exc, now
                    raise
                self._failure = None
                self._generation += 1
                log.info("obtained a new Sigma access token", extra={"generation": self._generation})
            return self._token, self._generation

    def invalidate(self, generation: int) -> None:
        """Forget the token that got a 401, unless another caller already replaced it."""
        with self._lock:
            if self._fetch is not None and generation == self._generation:
                self._token = None


def token_params(auth: AuthConfig) -> dict[str, str] | None:
    """GENERATE_TOKEN inputs for the configured auth type; None for a fixed token."""
    if auth.type == "apikey":
        assert auth.client_token is not None
        return {
            "action": GENERATE_TOKEN,
            "authType": "APIKEY",
            "clientId": auth.client_id,
            "clientToken": auth.client_token.reveal(),
        }
    if auth.type == "basic":
        assert auth.password is not None
        return {
            "action": GENERATE_TOKEN,
            "authType": "BASIC",
            "username": auth.username,
            "password": auth.password.reveal(),
        }
    return None


class SigmaClient:
    """Talks to one Sigma installation. Safe to use from many threads at once."""

    def __init__(
        self,
        config: SigmaConfig,
        observer: CallObserver,
        *,
        pool_size: int = 8,
        on_secret: Callable[[str], None] | None = None,
        on_exchange: ExchangeHook | None = None,
    ) -> None:
        self._config = config
        self._observer = observer
        self._on_secret = on_secret
        self._on_exchange = on_exchange
        self._base = config.url.rstrip("/")
        parts = urlsplit(config.url)
        self._where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self._pool = pool_manager(config, pool_size)
        self._headers = {
            "User-Agent": f"sigma-exporter/{__version__}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        fixed = config.auth.token.reveal() if config.auth.type == "token" and config.auth.token else None
        params = token_params(config.auth)
        self._tokens = TokenProvider(
            (lambda timeout: self._generate_token(params, timeout)) if params is not None else None,
            fixed=fixed,
        )

    def _budget(self, timeout: float | None) -> float:
        """A call's time budget: the caller's, never more than sigma.timeout_seconds."""
        return self._config.timeout_seconds if timeout is None else min(timeout, self._config.timeout_seconds)

    def __repr__(self) -> str:
        return f"SigmaClient(url={self._where!r}, auth={self._config.auth.type!r})"

    def close(self) -> None:
        """Let the connections go: idle ones close now, one in use when its call releases it (the call
        finishes). Not final: a later call opens a new connection."""
        self._pool.clear()

    # -- public calls --------------------------------------------------------------------------------
    def check_report(self, reference: str, timeout: float | None = None) -> ReportReply:
        """REPORT_INSTANCE_STATUS_CHECK of `reference`: the parsed reply (pending on 204), retried once with a
        new token after a 401. Raises SigmaError."""
        return self._status_call(REPORT_CHECK, reference, parse_report_reply, timeout)

    def probe(self, reference: str, timeout: float | None = None) -> None:
        """A status check of a reference Sigma does not know, to learn that it is reachable and takes our
        credentials when there is nothing else to check. Its expected answer (400, an unknown reference)
        is counted as a request but not as an error; any other failure raises and is counted as usual."""
        try:
            self._status_call(REPORT_CHECK, reference, parse_report_reply, timeout, expected=BadRequestError)
        except BadRequestError:
            return

    def authenticate(self, timeout: float | None = None) -> bool:
        """Obtain an access token now (GENERATE_TOKEN with the configured credentials). False, without a
        call, when the auth is a fixed token."""
        if not self._tokens.renewable:
            return False
        budget = self._budget(timeout)
        self._tokens.get(budget)
        return True

    def check_group(self, reference: str, timeout: float | None = None) -> GroupReply:
        """REPORT_GROUP_INSTANCE_STATUS_CHECK of `reference`: the parsed reply, retried once with a new token
        after a 401. Raises SigmaError."""
        return self._status_call(GROUP_CHECK, reference, parse_group_reply, timeout)

    def start_run(
        self,
        kind: str,
        ident: str,
        report_filter: Mapping[str, object] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Start a run of a report (`kind="report"`, RUN_REPORT) or a group (EXEC_REPORT_GROUP), passing
        `report_filter` through unchanged as `reportFilter`; the new run's reference number. Not retried
        (a retry could start the run twice), except once after a 401 with a renewed token."""
        action = RUN_REPORT if kind == "report" else EXEC_REPORT_GROUP
        key = "reportId" if kind == "report" else "reportGroupId"
        budget = self._budget(timeout)
        for attempt in (1, 2):
            token, generation = self._tokens.get(budget)
            params: dict[str, object] = {"action": action, key: ident, "accessToken": token}
            if report_filter:
                params["reportFilter"] = dict(report_filter)
            try:
                return self._call(
                    action,
                    "generate",
                    params,
                    lambda status, body: parse_start_reply(action, status, body),
                    budget,
                )
            except UnauthorizedError:
                if attempt == 2 or not self._tokens.renewable:
                    raise
                log.info(
                    "Sigma answered 401 to a start; renewing the access token once", extra={"action": action}
                )
                self._tokens.invalidate(generation)
        raise AssertionError("unreachable")

    # -- internals -----------------------------------------------------------------------------------
    def _generate_token(self, params: Mapping[str, str], timeout: float) -> str:
        token = self._call(GENERATE_TOKEN, "generate-token", params, parse_token_reply, timeout)
        if self._on_secret is not None:
            self._on_secret(token)
        return token

    def _status_call(
        self,
        action: str,
        reference: str,
        parse: Callable[[int, bytes], T],
        timeout: float | None,
        expected: type[SigmaError] | None = None,
    ) -> T:
        budget = self._budget(timeout)
        for attempt in (1, 2):
            token, generation = self._tokens.get(budget)
            params = {"action": action, "referenceNumber": reference, "accessToken": token}
            try:
                return self._call(action, "report-status", params, parse, budget, expected)
            except UnauthorizedError:
                if attempt == 2 or not self._tokens.renewable:
                    raise
                log.info("Sigma answered 401; renewing the access token once", extra={"reference": reference})
                self._tokens.invalidate(generation)
        raise AssertionError("unreachable")

    def _call(
        self,
        action: str,
        endpoint: str,
        params: Mapping[str, object],
        parse: Callable[[int, bytes], T],
        timeout: float,
        expected: type[SigmaError] | None = None,
    ) -> T:
        """One call, observed: its latency and code, and its error reason unless it is the `expected` one."""
        start = time.perf_counter()
        code = "error"
        reason: str | None = None
        try:
            status, body = self._post(action, endpoint, params, timeout)
            code = str(status)
            return parse(status, body)
        except SigmaError as exc:
            if expected is None or not isinstance(exc, expected):
                reason = exc.reason
            raise
        finally:
            self._observer.observe(action, code, time.perf_counter() - start, reason)

    def _post(
        self, action: str, endpoint: str, params: Mapping[str, object], timeout: float
    ) -> tuple[int, bytes]:
        url = f"{self._base}/{endpoint}"
        deadline = time.monotonic() + timeout
        where = f"{action} {self._where}"
        headers = self._headers
        body: bytes | None = None
        if self._config.params_in == "body":
            body = json.dumps(dict(params)).encode("utf-8")
            headers = {**headers, "Content-Type": "application/json"}
        else:
            query = {
                k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                for k, v in params.items()
            }
            url = f"{url}?{urlencode(query)}"
        # The typed error is raised outside the except blocks so that it carries no __context__: urllib3's
        # exceptions hold the full URL, query string (and so, with params_in: query, the token) included.
        error: SigmaError
        try:
            response = self._pool.urlopen(
                "POST",
                url,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except urllib3.exceptions.SSLError:
            error = SigmaTLSError(f"{where}: TLS handshake or certificate verification failed")
        except urllib3.exceptions.NewConnectionError:  # a ConnectTimeoutError subclass, but not a timeout
            error = SigmaConnectionError(f"{where}: connection failed or was reset")
        except urllib3.exceptions.TimeoutError:
            error = SigmaTimeoutError(f"{where}: no reply within {timeout:.3g}s")
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ProxyError, OSError):
            error = SigmaConnectionError(f"{where}: connection failed or was reset")
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            error = SigmaConnectionError(f"{where}: request failed ({type(exc).__name__})")
        else:
            done = False
            try:
                data = self._read_capped(response, deadline, where)
                done = True
                if self._on_exchange is not None:
                    self._on_exchange(action, params, response.status, dict(response.headers), data)
                return response.status, data
            finally:
                if not done:
                    response.close()  # a half-read connection must not be reused
                response.release_conn()
        raise error

    def _read_capped(self, response: urllib3.BaseHTTPResponse, deadline: float, where: str) -> bytes:
        cap = self._config.max_reply_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise ReplyTooLargeError(f"{where}: reply of {declared} bytes exceeds the cap of {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        failure: SigmaError | None = None
        try:
            # read1 returns whatever has arrived, so a body that trickles in is cut at the deadline
            # instead of blocking until 64 KiB or the end.
            while chunk := response.read1(65536, decode_content=True):
                size += len(chunk)
                if size > cap:
                    raise ReplyTooLargeError(f"{where}: reply exceeds the cap of {cap} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise SigmaTimeoutError(f"{where}: reply body still arriving at the deadline")
        except urllib3.exceptions.ReadTimeoutError:
            # The body stalled for longer than the read timeout (urllib3 raises its own exception here,
            # not one of requests').
            failure = SigmaTimeoutError(f"{where}: reply body stalled past the deadline")
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError):
            failure = TruncatedReplyError(f"{where}: connection ended in the middle of the reply body")
        except urllib3.exceptions.HTTPError as exc:
            failure = SigmaConnectionError(f"{where}: reading the reply failed ({type(exc).__name__})")
        if failure is not None:
            raise failure
        return b"".join(chunks)
