"""Basic auth against bcrypt hashes (with a keyed cache of successes) and the `rate_limit` token bucket."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

import bcrypt

from sigma_exporter.web.webconfig.model import RateLimitConfig, WebConfig
from sigma_exporter.web.webconfig.parse import BCRYPT_MIN_COST, bcrypt_cost

_BCRYPT_MAX_PASSWORD: Final = 72  # bcrypt only uses the first 72 bytes (Go's compare truncates too)


def parse_basic_authorization(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from an `Authorization: Basic ...` value, like Go's Request.BasicAuth."""
    if header is None or len(header) < 6 or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "surrogateescape"), password


class BasicAuthenticator:
    """Checks basic auth against a `WebConfig`'s bcrypt hashes, caching successes.

    - Successful (user, hash, password) checks are cached under an HMAC with a per-process random key,
      so neither the password nor a fast hash of it is kept; at most `cache_size` entries.
    - A user that is not configured is compared against a decoy hash of the highest cost in use, so
      unknown users cannot be told from wrong passwords by timing.
    - bcrypt runs one at a time (as in the toolkit): it is CPU-bound by design.

    Any thread (the server's thread pool calls it, never the event loop).
    """

    DECOY_PASSWORD: Final = b"sigma-exporter decoy password"

    def __init__(self, cache_size: int = 100) -> None:
        self._cache_size = cache_size
        self._cache: dict[bytes, None] = {}
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self._hmac_key = secrets.token_bytes(32)
        self._decoys: dict[int, bytes] = {}
        self.bcrypt_checks = 0  # bcrypt comparisons run (cache misses), for metrics and tests
        self.cache_hits = 0

    def _cache_key(self, user: str, hashed: str, password: bytes) -> bytes:
        mac = hmac.new(self._hmac_key, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8", "surrogateescape"), hashed.encode(), password):
            mac.update(len(part).to_bytes(8, "big"))
            mac.update(part)
        return mac.digest()

    def decoy_hash(self, users: Mapping[str, str]) -> bytes:
        """The hash unknown users are checked against: the highest cost in `users`, made once per cost."""
        cost = max((bcrypt_cost(h) or BCRYPT_MIN_COST for h in users.values()), default=BCRYPT_MIN_COST)
        with self._bcrypt_lock:
            decoy = self._decoys.get(cost)
            if decoy is None:
                decoy = bcrypt.hashpw(self.DECOY_PASSWORD, bcrypt.gensalt(rounds=cost))
                self._decoys[cost] = decoy
        return decoy

    def check_basic_auth(self, config: WebConfig, authorization: str | None) -> bool:
        """True when `config` needs no auth or `authorization` names a user with the right password."""
        if not config.users:
            return True
        credentials = parse_basic_authorization(authorization)
        if credentials is None:
            return False
        user, password = credentials
        password = password[:_BCRYPT_MAX_PASSWORD]
        hashed = config.users.get(user)
        known = hashed is not None
        hashed_bytes = hashed.encode() if hashed is not None else self.decoy_hash(config.users)
        key = self._cache_key(user, hashed_bytes.decode(), password)
        with self._cache_lock:
            if known and key in self._cache:
                self.cache_hits += 1
                return True
        with self._bcrypt_lock:
            self.bcrypt_checks += 1
            try:
                ok = bcrypt.checkpw(password, hashed_bytes)
            except ValueError:
                ok = False
        if not (ok and known):
            return False
        with self._cache_lock:
            if len(self._cache) >= self._cache_size:
                for old in list(self._cache)[: max(1, self._cache_size // 10)]:
                    del self._cache[old]
            self._cache[key] = None
        return True


class RateLimiter:
    """A token bucket like Go's rate.Limiter: starts full, `burst` tokens, one back per interval. Any
    thread."""

    def __init__(self, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._tokens = float(config.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take a token; False when the bucket is empty (answer 429). Any thread."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._last)
            self._last = now
            self._tokens = min(
                float(self.config.burst), self._tokens + elapsed / self.config.interval_seconds
            )
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
