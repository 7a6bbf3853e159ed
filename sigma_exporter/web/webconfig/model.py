"""The web config's typed model and the exporter-toolkit vocabulary it is checked against."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from sigma_exporter.config.walker import ConfigError

#: Web config errors are config errors: `FILE: KEY: problem`, never a secret (a key, a password hash).
WebConfigError = ConfigError

# --------------------------------------------------------------------------------------------------
# Vocabulary of the toolkit
# --------------------------------------------------------------------------------------------------

TLS_VERSIONS: Final[Mapping[str, ssl.TLSVersion]] = MappingProxyType(
    {
        "TLS10": ssl.TLSVersion.TLSv1,
        "TLS11": ssl.TLSVersion.TLSv1_1,
        "TLS12": ssl.TLSVersion.TLSv1_2,
        "TLS13": ssl.TLSVersion.TLSv1_3,
    }
)

CLIENT_AUTH_TYPES: Final = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)

# Go's tls.CipherSuites() (the ones the toolkit accepts), TLS <= 1.2 ones with their OpenSSL names.
CIPHER_SUITES_TLS12: Final[Mapping[str, str]] = MappingProxyType(
    {
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    }
)
# TLS 1.3 suites cannot be configured in Go (nor in Python's ssl): accepted, ignored.
CIPHER_SUITES_TLS13: Final = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)

CURVES: Final = frozenset({"CurveP256", "CurveP384", "CurveP521", "X25519", "X25519MLKEM768"})

# The only response headers the toolkit lets a web config set, with their allowed values (None: any).
ALLOWED_HEADERS: Final[Mapping[str, tuple[str, ...] | None]] = MappingProxyType(
    {
        "Strict-Transport-Security": None,
        "X-Content-Type-Options": ("nosniff",),
        "X-Frame-Options": ("deny", "sameorigin"),
        "X-XSS-Protection": None,
        "Content-Security-Policy": None,
    }
)

# --------------------------------------------------------------------------------------------------
# Typed configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class TLSServerConfig:
    """`tls_server_config` once validated. Paths are absolute when loaded from a file."""

    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = None  # inline PEM
    key: str | None = None  # inline PEM (a secret)
    client_ca_file: str | None = None
    client_ca: str | None = None  # inline PEM
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()
    source: str = "<web config>"

    def files(self) -> tuple[str, ...]:
        """The files this config reads (for change detection)."""
        return tuple(p for p in (self.cert_file, self.key_file, self.client_ca_file) if p)

    def __repr__(self) -> str:  # the inline key must not show up in logs or tracebacks
        shown = ", ".join(
            f"{name}={'<secret>' if name == 'key' and value else value!r}"
            for name, value in self.__dict__.items()
        )
        return f"TLSServerConfig({shown})"


@dataclass(frozen=True)
class RateLimitConfig:
    """`rate_limit`: a token bucket of `burst` tokens refilled one per `interval_seconds`."""

    interval_seconds: float
    burst: int


def _frozen_map(value: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, repr=False)
class WebConfig:
    """A whole web config file. The default value means: plain HTTP, no authentication."""

    tls: TLSServerConfig | None = None
    users: Mapping[str, str] = field(default_factory=_frozen_map)  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=_frozen_map)  # response headers to add
    http2: bool = True  # accepted for compatibility, not used (HTTP/1.1 only)
    rate_limit: RateLimitConfig | None = None
    source: str = "<none>"

    @property
    def auth_required(self) -> bool:
        """Basic auth is on: the file names at least one user."""
        return bool(self.users)

    def __repr__(self) -> str:  # hashes stay out of logs
        return (
            f"WebConfig(source={self.source!r}, tls={self.tls!r}, users={sorted(self.users)!r}, "
            f"headers={dict(self.headers)!r}, http2={self.http2!r}, rate_limit={self.rate_limit!r})"
        )
