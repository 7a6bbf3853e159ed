"""Transport to the Sigma reports API: tokens, status checks, timeouts, size caps, call statistics.

Parsing lives in `replies` (pure); this module only moves bytes and turns transport failures into typed
errors whose messages we write ourselves, because requests' exceptions carry full URLs (and with
`params_in: query`, the access token in them).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from sigma_exporter import __version__
from sigma_exporter.config import AuthConfig, SigmaConfig
from sigma_exporter.sigma.errors import (
    ReplyTooLargeError,
    SigmaConnectionError,
    SigmaError,
    SigmaTimeoutError,
    SigmaTLSError,
    TruncatedReplyError,
    UnauthorizedError,
)
from sigma_exporter.sigma.replies import (
    GroupReply,
    ReportReply,
    parse_group_reply,
    parse_report_reply,
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

GENERATE_TOKEN: Final = "GENERATE_TOKEN"  # noqa: S105 - an action name
REPORT_CHECK: Final = "REPORT_INSTANCE_STATUS_CHECK"
GROUP_CHECK: Final = "REPORT_GROUP_INSTANCE_STATUS_CHECK"
#: After a failed token request, callers within this many seconds get the same error without a call.
TOKEN_FAILURE_HOLD_SECONDS: Final = 2.0

T = TypeVar("T")


class CallObserver(Protocol):
    def observe(self, action: str, code: str, seconds: float, error_reason: str | None) -> None: ...


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
        return self._fetch is not None

    def get(self, timeout: float) -> tuple[str, int]:
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
    ) -> None:
        self._config = config
        self._observer = observer
        self._on_secret = on_secret
        self._base = config.url.rstrip("/")
        parts = urlsplit(config.url)
        self._where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 1), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.verify = config.tls.ca_file or not config.tls.insecure_skip_verify
        session.headers.update({"User-Agent": f"sigma-exporter/{__version__}", "Accept": "application/json"})
        self._session = session
        fixed = config.auth.token.reveal() if config.auth.type == "token" and config.auth.token else None
        params = token_params(config.auth)
        self._tokens = TokenProvider(
            (lambda timeout: self._generate_token(params, timeout)) if params is not None else None,
            fixed=fixed,
        )

    def __repr__(self) -> str:
        return f"SigmaClient(url={self._where!r}, auth={self._config.auth.type!r})"

    def close(self) -> None:
        self._session.close()

    # -- public calls --------------------------------------------------------------------------------
    def check_report(self, reference: str, timeout: float | None = None) -> ReportReply:
        return self._status_call(REPORT_CHECK, reference, parse_report_reply, timeout)

    def check_group(self, reference: str, timeout: float | None = None) -> GroupReply:
        return self._status_call(GROUP_CHECK, reference, parse_group_reply, timeout)

    # -- internals -----------------------------------------------------------------------------------
    def _generate_token(self, params: Mapping[str, str], timeout: float) -> str:
        token = self._call(GENERATE_TOKEN, "generate-token", params, parse_token_reply, timeout)
        if self._on_secret is not None:
            self._on_secret(token)
        return token

    def _status_call(
        self, action: str, reference: str, parse: Callable[[int, bytes], T], timeout: float | None
    ) -> T:
        budget = (
            self._config.timeout_seconds if timeout is None else min(timeout, self._config.timeout_seconds)
        )
        for attempt in (1, 2):
            token, generation = self._tokens.get(budget)
            params = {"action": action, "referenceNumber": reference, "accessToken": token}
            try:
                return self._call(action, "report-status", params, parse, budget)
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
        params: Mapping[str, str],
        parse: Callable[[int, bytes], T],
        timeout: float,
    ) -> T:
        start = time.perf_counter()
        code = "error"
        reason: str | None = None
        try:
            status, body = self._post(action, endpoint, params, timeout)
            code = str(status)
            return parse(status, body)
        except SigmaError as exc:
            reason = exc.reason
            raise
        finally:
            self._observer.observe(action, code, time.perf_counter() - start, reason)

    def _post(
        self, action: str, endpoint: str, params: Mapping[str, str], timeout: float
    ) -> tuple[int, bytes]:
        url = f"{self._base}/{endpoint}"
        deadline = time.monotonic() + timeout
        where = f"{action} {self._where}"
        kwargs: dict[str, object] = (
            {"json": dict(params)} if self._config.params_in == "body" else {"params": dict(params)}
        )
        # The typed error is raised outside the except blocks so that it carries no __context__: requests'
        # exceptions hold the full URL, query string (and so, with params_in: query, the token) included.
        error: SigmaError
        try:
            with self._session.post(
                url,
                timeout=(timeout, timeout),
                stream=True,
                allow_redirects=False,
                **kwargs,  # type: ignore[arg-type]
            ) as response:
                return response.status_code, self._read_capped(response, deadline, where)
        except SigmaError:
            raise
        except requests.exceptions.SSLError:
            error = SigmaTLSError(f"{where}: TLS handshake or certificate verification failed")
        except requests.exceptions.Timeout:
            error = SigmaTimeoutError(f"{where}: no reply within {timeout:.3g}s")
        except requests.exceptions.ConnectionError:
            error = SigmaConnectionError(f"{where}: connection failed or was reset")
        except requests.exceptions.RequestException as exc:
            error = SigmaConnectionError(f"{where}: request failed ({type(exc).__name__})")
        raise error

    def _read_capped(self, response: requests.Response, deadline: float, where: str) -> bytes:
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
            raw = response.raw
            while chunk := raw.read1(65536, decode_content=True):
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
