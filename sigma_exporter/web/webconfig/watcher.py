"""The web config in force: re-read (with its certificate files) when it changes, a bad change kept out,
and the per-request checks the server applies (basic auth, rate limit, response headers)."""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sigma_exporter.config.walker import read_file
from sigma_exporter.web.webconfig.auth import BasicAuthenticator, RateLimiter
from sigma_exporter.web.webconfig.model import WebConfig, WebConfigError
from sigma_exporter.web.webconfig.parse import parse_web_config_text
from sigma_exporter.web.webconfig.tls import build_ssl_context

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveWebConfig:
    """What the server uses right now: the config and, when TLS is on, its SSL context."""

    config: WebConfig
    ssl_context: ssl.SSLContext | None


_StatSig = tuple[tuple[str, tuple[int, int, int, int] | None], ...]


def _stat_signature(paths: Sequence[str]) -> _StatSig:
    sig: list[tuple[str, tuple[int, int, int, int] | None]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            sig.append((path, None))
        else:
            sig.append((path, (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)))
    return tuple(sig)


class WebConfigWatcher:
    """Holds the active web config; re-reads it (and its certificate files) when they change.

    `current()` is the hot path: it checks file metadata at most every `check_interval` seconds and
    never waits for another thread's reload. A changed file that is bad is logged once (without
    secrets) and the last good config stays active; it is retried until fixed.

    Any thread: the server's event loop calls `current()` for every request and handshake; `reload()`
    comes from /-/reload (the server's thread pool) or SIGHUP's thread; basic auth runs in the thread pool.

    Created with `path=None`: no TLS, no auth, nothing to watch. The first load raises
    `WebConfigError` (the server must not start on a bad file).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self.authenticator = BasicAuthenticator()
        # State for metrics: mirrors sigma_config_last_reload_* of the main config.
        self._reload_ok = True
        self.last_reload_time = time.time()  # wall clock of the last successful (re)load
        self._last_error: str | None = None
        self.reloads_total = 0  # successful loads, the first one included
        self.reload_failures_total = 0
        self._failed_digest: bytes | None = None
        if self.path is None:
            self._active = ActiveWebConfig(WebConfig(), None)
            self._digest = b""
            self._sig: _StatSig = ()
            self._rate_limiter: RateLimiter | None = None
            self._last_check = clock()
            return
        sig, digest, config, context = self._load()
        self._active = ActiveWebConfig(config, context)
        self._digest, self._sig = digest, sig
        self._rate_limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self.reloads_total = 1
        self._last_check = clock()
        logger.info(
            "web config %s loaded: tls=%s basic_auth_users=%d",
            self.path,
            "on" if context is not None else "off",
            len(config.users),
        )

    @property
    def last_reload_ok(self) -> bool:
        """False while the file (or a TLS file it names) has a change that could not be applied."""
        return self._reload_ok

    @property
    def last_error(self) -> str | None:
        """The message of the failed reload in effect (file and key, never a secret), else None."""
        return self._last_error

    # -- reading ---------------------------------------------------------------------------------

    def _read(self) -> tuple[_StatSig, bytes, WebConfig | WebConfigError]:
        """(stat signature, content digest, config or the error) without building an SSL context.

        The stat signature is taken before reading, so a change during the read is seen next time.
        The digest covers the file and the TLS files it names; it holds no secret.
        """
        assert self.path is not None
        sig = _stat_signature((self.path,))
        digest = hashlib.sha256()
        try:
            text = read_file(self.path, "web config file")
        except WebConfigError as exc:
            digest.update(b"unreadable\0" + str(exc).encode())
            return sig, digest.digest(), exc
        digest.update(hashlib.sha256(text).digest())
        try:
            config = parse_web_config_text(text, self.path, os.path.dirname(os.path.abspath(self.path)))
        except WebConfigError as exc:
            return sig, digest.digest(), exc
        files = config.tls.files() if config.tls else ()
        sig = sig + _stat_signature(files)
        for name in files:
            digest.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0")
            try:
                with open(name, "rb") as f:
                    digest.update(hashlib.sha256(f.read()).digest())
            except OSError:
                digest.update(b"unreadable")
        return sig, digest.digest(), config

    def _load(self) -> tuple[_StatSig, bytes, WebConfig, ssl.SSLContext | None]:
        sig, digest, config = self._read()
        if isinstance(config, WebConfigError):
            raise config
        context = build_ssl_context(config.tls) if config.tls else None
        return sig, digest, config, context

    # -- public API ------------------------------------------------------------------------------

    def current(self) -> ActiveWebConfig:
        """The active config and SSL context, after a cheap change check (at most every interval)."""
        due = self.path is not None and self._clock() - self._last_check >= self.check_interval
        if due and self._lock.acquire(blocking=False):  # somebody else checking: use what we have
            try:
                self._check(force=False)
            finally:
                self._lock.release()
        return self._active

    def reload(self) -> bool:
        """Check now (e.g. on POST /-/reload or SIGHUP). True when the file in force is good."""
        if self.path is None:
            return True
        with self._lock:
            self._check(force=True)
        return self.last_reload_ok

    def allow_request(self) -> bool:
        """The `rate_limit` token bucket: False means answer 429 Too Many Requests."""
        limiter = self._rate_limiter
        return limiter is None or limiter.allow()

    def check_basic_auth(self, authorization: str | None, config: WebConfig | None = None) -> bool:
        """Basic auth against `config` (default: the current one)."""
        if config is None:
            config = self.current().config
        return self.authenticator.check_basic_auth(config, authorization)

    # -- change detection ------------------------------------------------------------------------

    def _check(self, force: bool) -> None:
        assert self.path is not None
        self._last_check = self._clock()
        if not force and self.last_reload_ok and _stat_signature([p for p, _ in self._sig]) == self._sig:
            return  # the hot path: a few stat calls per interval
        sig, digest, config = self._read()
        if digest == self._digest and not isinstance(config, WebConfigError):
            self._sig = sig  # touched, or changed and changed back: nothing to apply
            if force or not self.last_reload_ok:
                self._succeed()
            return
        if not force and digest == self._failed_digest:
            return  # still the same bad content: already logged
        try:
            if isinstance(config, WebConfigError):
                raise config
            if (config.tls is None) != (self._active.config.tls is None):
                raise WebConfigError(
                    self.path,
                    "tls_server_config",
                    "TLS cannot be turned on or off by a reload; restart the exporter to change it",
                )
            context = build_ssl_context(config.tls) if config.tls else None
        except WebConfigError as exc:
            self._fail(str(exc), digest)
            return
        old = self._active.config
        self._active = ActiveWebConfig(config, context)
        self._sig, self._digest = sig, digest
        if config.rate_limit != old.rate_limit:
            self._rate_limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self._succeed()
        logger.info(
            "web config %s reloaded: tls=%s basic_auth_users=%d",
            self.path,
            "on" if context is not None else "off",
            len(config.users),
        )

    def _succeed(self) -> None:
        self._reload_ok = True
        self.last_reload_time = time.time()
        self._last_error = None
        self._failed_digest = None
        self.reloads_total += 1

    def _fail(self, message: str, digest: bytes) -> None:
        self._reload_ok = False
        self._last_error = message
        self._failed_digest = digest
        self.reload_failures_total += 1
        logger.error("web config reload failed, keeping the last good one: %s", message)


class WebConfigSecurity:
    """Per-request checks for an HTTP handler, backed by a watcher (web.py's `WebSecurity` hooks).

    `open_paths` (e.g. /-/healthy and /-/ready for --web.open-health-endpoints) skip basic auth.
    """

    def __init__(self, watcher: WebConfigWatcher, open_paths: Iterable[str] = ()) -> None:
        self.watcher = watcher
        self.open_paths = frozenset(open_paths)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str] | None, open_paths: Iterable[str] = ()
    ) -> WebConfigSecurity:
        """Load `path` (raises `WebConfigError`, a ValueError, naming file and key)."""
        return cls(WebConfigWatcher(path), open_paths)

    def authorised(self, path: str, authorization: str | None) -> bool:
        """False: answer 401 with `WWW-Authenticate: Basic realm=...`."""
        config = self.watcher.current().config
        if not config.users or path in self.open_paths:
            return True
        return self.watcher.check_basic_auth(authorization, config)

    def extra_headers(self) -> dict[str, str]:
        """`http_server_config.headers`, for every response (401 and 429 included)."""
        return dict(self.watcher.current().config.headers)

    def allow_request(self) -> bool:
        """`rate_limit`: False means answer 429 Too Many Requests."""
        return self.watcher.allow_request()

    @property
    def tls_enabled(self) -> bool:
        """The server speaks TLS (the web config in force has it)."""
        return self.watcher.current().ssl_context is not None
