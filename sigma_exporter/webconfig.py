"""`--web.config.file`: TLS, basic auth and response headers in the Prometheus exporter-toolkit format.

The file format is the one of https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
so a file written for any Prometheus exporter works unchanged:

    tls_server_config:            # TLS is on when any of cert/cert_file/key/key_file/client_ca/
      cert_file: server.crt       #   client_ca_file/client_auth_type is set
      key_file: server.key        # relative paths are relative to the web config file's directory
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      client_allowed_sans: [prometheus.example.com]
      min_version: TLS12          # TLS10 TLS11 TLS12 (default) TLS13
      max_version: TLS13
    http_server_config:
      http2: true                 # accepted and ignored: this server speaks HTTP/1.1
      headers: {X-Frame-Options: deny}
    basic_auth_users:
      alice: $2y$10$...           # bcrypt hashes
    rate_limit: {interval: 1s, burst: 20}

Differences from the Go toolkit, forced by Python's `ssl` module (each one fails closed or is harmless):

- `cipher_suites`: TLS 1.2 suites are applied (translated to OpenSSL names); TLS 1.3 suites are
  accepted and ignored, as the toolkit does.
- `curve_preferences`: names are validated, the setting is ignored (Python's `ssl` can pin only one
  curve, which would be a different policy from a preference list).
- `RequestClientCert`: the toolkit asks for a certificate and never checks or uses it; here no
  certificate is asked for. Clients get exactly the same access.
- `RequireAnyClientCert` (and its old name `RequireClientCert`): the toolkit accepts any certificate,
  Python cannot accept a certificate without verifying it. With `client_ca`/`client_ca_file` the
  certificate is verified against that CA (stricter); without one the file is rejected with a clear
  error rather than locking every client out.
- `client_allowed_sans` is checked right after the handshake instead of inside it: a client whose
  certificate has no allowed SAN has its connection closed before any byte of HTTP is read.
- Turning TLS on or off needs a restart (the toolkit decides it at start-up too); a reloaded file that
  does it is refused and the last good file stays active.

Layout: `parse_web_config` is pure (a YAML document in, a `WebConfig` or a `WebConfigError` out);
`load_web_config` reads a file; `build_ssl_context` turns a `TLSServerConfig` into an `ssl.SSLContext`;
`WebConfigWatcher` re-reads the file and the certificate files when they change; `BasicAuthenticator`
checks `Authorization` headers; `TLSServerMixin` makes a `socketserver` TCP server speak TLS with the
watcher's current context.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import http.server
import ipaddress
import logging
import os
import re
import secrets
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import bcrypt

from sigma_exporter.yamlload import YAMLError, parse_yaml

logger = logging.getLogger("sigma_exporter.webconfig")

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
# Accepted by the toolkit for backwards compatibility, same meaning as RequireAnyClientCert.
_CLIENT_AUTH_ALIASES: Final = {"RequireClientCert": "RequireAnyClientCert", "": "NoClientCert"}

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

_TOP_KEYS: Final = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS: Final = (
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_HTTP_KEYS: Final = ("http2", "headers")
_RATE_LIMIT_KEYS: Final = ("interval", "burst")

_BCRYPT_HASH = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_BCRYPT_MIN_COST: Final = 4
_BCRYPT_MAX_COST: Final = 31
_BCRYPT_MAX_PASSWORD: Final = 72  # bcrypt only uses the first 72 bytes (Go's compare truncates too)

# --------------------------------------------------------------------------------------------------
# Typed configuration
# --------------------------------------------------------------------------------------------------


class WebConfigError(ValueError):
    """A web config file that cannot be used; the message names the file and the key.

    Messages never carry a secret (a key, a password hash): only key names and enumeration values.
    """

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


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
        return bool(self.users)

    def __repr__(self) -> str:  # hashes stay out of logs
        return (
            f"WebConfig(source={self.source!r}, tls={self.tls!r}, users={sorted(self.users)!r}, "
            f"headers={dict(self.headers)!r}, http2={self.http2!r}, rate_limit={self.rate_limit!r})"
        )


# --------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _mapping(value: object, source: str, where: str, allowed: Sequence[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(source, where, f"must be a mapping, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise WebConfigError(
                source, _join(where, str(key)), f"unknown key (allowed: {', '.join(allowed)})"
            )
    return value


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, dict) else type(value).__name__
    )


def _opt_str(section: dict[str, Any], key: str, source: str, where: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebConfigError(source, _join(where, key), f"must be a string, got {_type_name(value)}")
    return value or None


def _opt_bool(section: dict[str, Any], key: str, source: str, where: str, default: bool) -> bool:
    value = section.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise WebConfigError(source, _join(where, key), f"must be true or false, got {_type_name(value)}")
    return value


def _str_list(section: dict[str, Any], key: str, source: str, where: str) -> tuple[str, ...] | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise WebConfigError(source, _join(where, key), f"must be a list, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise WebConfigError(
                source, f"{_join(where, key)}[{i}]", f"must be a string, got {_type_name(item)}"
            )
    return tuple(value)


def _join_dir(base_dir: str | None, path: str | None) -> str | None:
    """Like the toolkit's config_util.JoinDir: relative paths are relative to the config's directory."""
    if path is None or base_dir is None or os.path.isabs(path):
        return path
    return os.path.join(base_dir, path)


def _parse_tls(value: object, source: str, base_dir: str | None) -> TLSServerConfig | None:
    where = "tls_server_config"
    section = _mapping(value, source, where, _TLS_KEYS)
    cert = _opt_str(section, "cert", source, where)
    key = _opt_str(section, "key", source, where)
    client_ca = _opt_str(section, "client_ca", source, where)
    cert_file = _join_dir(base_dir, _opt_str(section, "cert_file", source, where))
    key_file = _join_dir(base_dir, _opt_str(section, "key_file", source, where))
    client_ca_file = _join_dir(base_dir, _opt_str(section, "client_ca_file", source, where))
    raw_auth = section.get("client_auth_type")
    if raw_auth is not None and not isinstance(raw_auth, str):
        raise WebConfigError(
            source, f"{where}.client_auth_type", f"must be a string, got {_type_name(raw_auth)}"
        )
    client_auth = _CLIENT_AUTH_ALIASES.get(raw_auth or "", raw_auth or "NoClientCert")
    if client_auth not in CLIENT_AUTH_TYPES:
        raise WebConfigError(
            source,
            f"{where}.client_auth_type",
            f"invalid value {raw_auth!r} (expected one of {', '.join(CLIENT_AUTH_TYPES)})",
        )
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = section.get(name)
        if version is None:
            version = default
        if not isinstance(version, str) or version not in TLS_VERSIONS:
            raise WebConfigError(
                source,
                f"{where}.{name}",
                f"unknown TLS version {version!r} (expected one of {', '.join(TLS_VERSIONS)})",
            )
        versions[name] = version
    ciphers = _str_list(section, "cipher_suites", source, where) or ()
    for i, suite in enumerate(ciphers):
        if suite not in CIPHER_SUITES_TLS12 and suite not in CIPHER_SUITES_TLS13:
            raise WebConfigError(source, f"{where}.cipher_suites[{i}]", f"unknown cipher: {suite}")
    curves = _str_list(section, "curve_preferences", source, where) or ()
    for i, curve in enumerate(curves):
        if curve not in CURVES:
            raise WebConfigError(
                source,
                f"{where}.curve_preferences[{i}]",
                f"unknown curve: {curve} (expected one of {', '.join(sorted(CURVES))})",
            )
    sans = _str_list(section, "client_allowed_sans", source, where)
    prefer = _opt_bool(section, "prefer_server_cipher_suites", source, where, True)

    # The toolkit's TLSConfig.IsEnabled: only these keys turn TLS on.
    enabled = any((cert, key, client_ca, cert_file, key_file, client_ca_file, raw_auth))
    if not enabled:
        return None
    if not cert_file and not cert:
        raise WebConfigError(source, where, "missing one of cert or cert_file")
    if not key_file and not key:
        raise WebConfigError(source, where, "missing one of key or key_file")
    if (client_ca_file or client_ca) and client_auth == "NoClientCert":
        raise WebConfigError(
            source,
            f"{where}.client_auth_type",
            "client CA's have been configured without a Client Auth Policy "
            "(set client_auth_type, e.g. RequireAndVerifyClientCert)",
        )
    if sans is not None and client_auth not in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        raise WebConfigError(
            source,
            f"{where}.client_allowed_sans",
            "requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert",
        )
    if client_auth == "RequireAnyClientCert" and not (client_ca_file or client_ca):
        raise WebConfigError(
            source,
            f"{where}.client_auth_type",
            "RequireAnyClientCert without client_ca_file or client_ca is not supported: Python's ssl "
            "module verifies every client certificate; set client_ca_file (client certificates are "
            "then verified against it) or use RequireAndVerifyClientCert",
        )
    if TLS_VERSIONS[versions["min_version"]] > TLS_VERSIONS[versions["max_version"]]:
        raise WebConfigError(
            source,
            f"{where}.min_version",
            f"{versions['min_version']} is above max_version {versions['max_version']}",
        )
    if sans is not None:
        sans = tuple(_normalize_san(s) for s in sans)
    return TLSServerConfig(
        cert_file=cert_file,
        key_file=key_file,
        cert=cert,
        key=key,
        client_ca_file=client_ca_file,
        client_ca=client_ca,
        client_auth_type=client_auth,
        client_allowed_sans=sans,
        min_version=versions["min_version"],
        max_version=versions["max_version"],
        cipher_suites=ciphers,
        prefer_server_cipher_suites=prefer,
        curve_preferences=curves,
        source=source,
    )


def _header_value_ok(value: str) -> bool:
    return all(ch == "\t" or " " <= ch <= "~" for ch in value)


def _parse_http(value: object, source: str) -> tuple[bool, dict[str, str]]:
    where = "http_server_config"
    section = _mapping(value, source, where, _HTTP_KEYS)
    http2 = _opt_bool(section, "http2", source, where, True)
    raw = section.get("headers")
    if raw is None:
        return http2, {}
    if not isinstance(raw, dict):
        raise WebConfigError(source, f"{where}.headers", f"must be a mapping, got {_type_name(raw)}")
    headers: dict[str, str] = {}
    for name, raw_value in raw.items():
        key = f"{where}.headers.{name}"
        header_value = raw_value
        if not isinstance(name, str) or name not in ALLOWED_HEADERS:
            raise WebConfigError(
                source,
                key,
                f"HTTP header {str(name)!r} can not be configured (allowed: {', '.join(ALLOWED_HEADERS)})",
            )
        if header_value is None:
            continue
        # YAML reads `X-XSS-Protection: 1` as a number; the toolkit (Go) takes the text.
        if isinstance(header_value, int) and not isinstance(header_value, bool):
            header_value = str(header_value)
        if not isinstance(header_value, str):
            raise WebConfigError(
                source, key, f"must be a string, got {_type_name(header_value)} (quote the value)"
            )
        allowed = ALLOWED_HEADERS[name]
        if allowed is not None and header_value not in allowed:
            raise WebConfigError(
                source,
                key,
                f"invalid value {header_value!r} (expected one of: {', '.join(allowed)})",
            )
        if not _header_value_ok(header_value):
            raise WebConfigError(
                source, key, "the value must be printable ASCII on one line (no control characters)"
            )
        if header_value:  # "Unset if blank"
            headers[name] = header_value
    return http2, headers


def bcrypt_cost(hashed: str) -> int | None:
    """The cost of a bcrypt hash in the formats we can verify ($2a$, $2b$, $2y$), else None."""
    match = _BCRYPT_HASH.fullmatch(hashed)
    if match is None:
        return None
    cost = int(match.group(1))
    return cost if _BCRYPT_MIN_COST <= cost <= _BCRYPT_MAX_COST else None


def _parse_users(value: object, source: str) -> dict[str, str]:
    where = "basic_auth_users"
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(
            source, where, f"must be a mapping of user: bcrypt hash, got {_type_name(value)}"
        )
    users: dict[str, str] = {}
    for raw_name, hashed in value.items():
        name = str(raw_name) if isinstance(raw_name, int) and not isinstance(raw_name, bool) else raw_name
        if not isinstance(name, str):
            raise WebConfigError(
                source, f"{where}.{name}", "a user name must be a string (quote it in the YAML)"
            )
        key = f"{where}.{name}"
        if not isinstance(hashed, str) or bcrypt_cost(hashed) is None:
            # Never echo the value: it is (or was meant to be) a password hash.
            raise WebConfigError(
                source,
                key,
                "not a bcrypt hash ($2a$, $2b$ or $2y$, cost 4..31, 60 characters; "
                "make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
            )
        users[name] = hashed
    return users


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go `time.ParseDuration` string ("1s", "1m30s", "250ms", "0"), None if invalid."""
    body = text[1:] if text[:1] in "+-" else text
    negative = text.startswith("-")
    if body == "0":
        return 0.0
    if not body:
        return None
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return -total if negative else total


def _parse_rate_limit(value: object, source: str) -> RateLimitConfig | None:
    where = "rate_limit"
    section = _mapping(value, source, where, _RATE_LIMIT_KEYS)
    raw_interval = section.get("interval", 0)
    if isinstance(raw_interval, bool) or not isinstance(raw_interval, (str, int)):
        raise WebConfigError(
            source, f"{where}.interval", f"must be a duration such as 1s, got {_type_name(raw_interval)}"
        )
    if isinstance(raw_interval, int):  # Go decodes a bare number into a Duration as nanoseconds
        interval: float | None = raw_interval * 1e-9
    else:
        interval = parse_go_duration(raw_interval)
    if interval is None or interval < 0:
        raise WebConfigError(
            source, f"{where}.interval", f"invalid duration {raw_interval!r} (examples: 1s, 500ms, 1m)"
        )
    burst = section.get("burst", 0)
    if burst is None:
        burst = 0
    if isinstance(burst, bool) or not isinstance(burst, int):
        raise WebConfigError(source, f"{where}.burst", f"must be an integer, got {_type_name(burst)}")
    if burst < 0:
        raise WebConfigError(source, f"{where}.burst", "must not be negative")
    if interval == 0:  # "set to 0 to disable rate limiter"
        return None
    return RateLimitConfig(interval_seconds=interval, burst=burst)


def parse_web_config(data: object, source: str, base_dir: str | None = None) -> WebConfig:
    """A parsed YAML document -> `WebConfig`. Pure: touches no file.

    `source` names the file in error messages; relative paths are joined with `base_dir` when given.
    An empty document is a valid file that turns nothing on.
    """
    top = _mapping(data, source, "", _TOP_KEYS)
    tls = _parse_tls(top.get("tls_server_config"), source, base_dir)
    http2, headers = _parse_http(top.get("http_server_config"), source)
    users = _parse_users(top.get("basic_auth_users"), source)
    rate_limit = _parse_rate_limit(top.get("rate_limit"), source)
    return WebConfig(
        tls=tls,
        users=MappingProxyType(users),
        headers=MappingProxyType(headers),
        http2=http2,
        rate_limit=rate_limit,
        source=source,
    )


def parse_web_config_text(text: str | bytes, source: str, base_dir: str | None = None) -> WebConfig:
    """YAML text -> `WebConfig` (strict YAML: duplicate keys are an error)."""
    try:
        data = parse_yaml(text, source)
    except YAMLError as exc:
        raise WebConfigError(source, "", str(exc).removeprefix(f"{source}: ")) from None
    return parse_web_config(data, source, base_dir)


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise WebConfigError(path, "", f"cannot read the web config file: {exc.strerror or exc}") from None


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and parse a web config file. The TLS files it names are checked by `build_ssl_context`."""
    path = os.fspath(path)
    return parse_web_config_text(_read_file(path), path, os.path.dirname(os.path.abspath(path)))


def validate_web_config_file(path: str | os.PathLike[str]) -> WebConfig:
    """Like the toolkit's web.Validate: parse the file and load its certificates (for check-config)."""
    config = load_web_config(path)
    if config.tls is not None:
        build_ssl_context(config.tls)
    return config


# --------------------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------------------


class _EncryptedKeyError(Exception):
    pass


def _refuse_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal and block the server.
    raise _EncryptedKeyError


@contextlib.contextmanager
def _pem_path(path: str | None, inline: str | None) -> Iterator[str]:
    """A path for `load_cert_chain`: the file itself, or an in-memory file holding the inline PEM."""
    if path:
        yield path
        return
    data = (inline or "").encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("sigma-exporter-pem", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="sigma-exporter-pem-")  # mode 0700
    try:
        name = os.path.join(directory, "pem")
        with open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)
        yield name
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _ssl_problem(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or type(exc).__name__
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def build_ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """A server-side `SSLContext` for `tls`: certificate, client auth policy, versions, ciphers.

    Reads the certificate, key and CA files now; raises `WebConfigError` naming the key at fault.
    """
    source, where = tls.source, "tls_server_config"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS10/TLS11 are deprecated, but a valid toolkit setting
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = TLS_VERSIONS[tls.min_version]
        ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = [CIPHER_SUITES_TLS12[s] for s in tls.cipher_suites if s in CIPHER_SUITES_TLS12]
    if tls12:
        try:
            ctx.set_ciphers(":".join(tls12))
        except ssl.SSLError as exc:
            raise WebConfigError(
                source, f"{where}.cipher_suites", f"none of the cipher suites is usable ({_ssl_problem(exc)})"
            ) from None

    cert_key = f"{where}.cert_file" if tls.cert_file else f"{where}.cert"
    key_key = f"{where}.key_file" if tls.key_file else f"{where}.key"
    for key, path in ((cert_key, tls.cert_file), (key_key, tls.key_file)):
        if path and not os.path.isfile(path):
            raise WebConfigError(source, key, f"cannot read {path}: no such file")
    try:
        with _pem_path(tls.cert_file, tls.cert) as cert_path, _pem_path(tls.key_file, tls.key) as key_path:
            ctx.load_cert_chain(cert_path, key_path, password=_refuse_password)
    except _EncryptedKeyError:
        raise WebConfigError(
            source, key_key, "the private key is encrypted; use an unencrypted key"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise WebConfigError(
            source,
            f"{cert_key} / {key_key}",
            f"failed to load the certificate and key ({_ssl_problem(exc)}); "
            "are they PEM, and does the key match the certificate?",
        ) from None

    auth = tls.client_auth_type
    if auth in ("NoClientCert", "RequestClientCert"):
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.verify_mode = ssl.CERT_OPTIONAL if auth == "VerifyClientCertIfGiven" else ssl.CERT_REQUIRED
        try:
            if tls.client_ca_file:
                ctx.load_verify_locations(cafile=tls.client_ca_file)
            elif tls.client_ca:
                ctx.load_verify_locations(cadata=tls.client_ca)
            else:  # Go verifies against the system roots when no client CA is given
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, OSError, ValueError) as exc:
            key = f"{where}.client_ca_file" if tls.client_ca_file else f"{where}.client_ca"
            raise WebConfigError(
                source, key, f"failed to load the client CA certificates ({_ssl_problem(exc)})"
            ) from None
    return ctx


def _normalize_san(value: str) -> str:
    """IP addresses compared the way Go prints them (lower case, `::` compressed, v4-mapped as v4)."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return value
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def peer_sans(peer_cert: Mapping[str, Any]) -> list[str]:
    """The DNS, IP, e-mail and URI subject alternative names of `SSLSocket.getpeercert()`."""
    names = []
    for kind, value in peer_cert.get("subjectAltName", ()):
        if kind == "IP Address":
            names.append(_normalize_san(value))
        elif kind in ("DNS", "email", "URI"):
            names.append(value)
    return names


def client_sans_allowed(tls: TLSServerConfig, peer_cert: Mapping[str, Any] | None) -> bool:
    """`client_allowed_sans`: True when unset, or when the client certificate has one of them."""
    if tls.client_allowed_sans is None:
        return True
    if not peer_cert:
        return False
    allowed = set(tls.client_allowed_sans)
    return any(name in allowed for name in peer_sans(peer_cert))


# --------------------------------------------------------------------------------------------------
# Basic auth
# --------------------------------------------------------------------------------------------------


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
        cost = max((bcrypt_cost(h) or _BCRYPT_MIN_COST for h in users.values()), default=_BCRYPT_MIN_COST)
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
    """A token bucket like Go's rate.Limiter: starts full, `burst` tokens, one back per interval."""

    def __init__(self, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._tokens = float(config.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
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


# --------------------------------------------------------------------------------------------------
# Reloading
# --------------------------------------------------------------------------------------------------


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
            text = _read_file(self.path)
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
        return self.watcher.current().ssl_context is not None


# --------------------------------------------------------------------------------------------------
# Serving TLS from socketserver / http.server
# --------------------------------------------------------------------------------------------------

_PLAIN_HTTP_REPLY: Final = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


class TLSServerMixin(socketserver.TCPServer):
    """Serve TLS with the watcher's current SSL context; put it first in the bases:

        class Server(TLSServerMixin, http.server.ThreadingHTTPServer): ...
        server = Server(("127.0.0.1", 9842), Handler, web_config_watcher=watcher)

    Sockets are wrapped in `get_request` (accept loop: no I/O) and the handshake runs in the handler
    thread with `tls_handshake_timeout`, so a slow or silent client cannot block accepting. A failed
    handshake (plain HTTP on the TLS port, no client certificate, ...) closes that connection with one
    debug log line; plain HTTP gets a short 400 answer first, as Go's server does. Without TLS in the
    web config the server serves plain HTTP.
    """

    tls_handshake_timeout: float = 10.0

    def __init__(
        self,
        server_address: Any,
        RequestHandlerClass: Callable[[Any, Any, Any], socketserver.BaseRequestHandler],
        bind_and_activate: bool = True,
        *,
        web_config_watcher: WebConfigWatcher | None = None,
    ) -> None:
        self.web_config_watcher = web_config_watcher or WebConfigWatcher(None)
        self.tls_handshake_failures = 0  # for a metric
        self._failures_lock = threading.Lock()
        super().__init__(server_address, RequestHandlerClass, bind_and_activate)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        context = self.web_config_watcher.current().ssl_context
        if context is None:
            return sock, address
        with contextlib.suppress(OSError):  # the handshake is several small writes: no Nagle delays
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address
        except (OSError, ValueError):  # peer gone already; the accept loop ignores OSError
            sock.close()
            raise OSError("connection closed before the TLS handshake") from None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket) and not self._tls_handshake(request, client_address):
            return  # process_request_thread closes the socket
        super().finish_request(request, client_address)

    def _handshake_failed(self, client_address: Any, problem: str) -> None:
        with self._failures_lock:
            self.tls_handshake_failures += 1
        logger.debug("TLS handshake with %s failed: %s", _peer(client_address), problem)

    def _tls_handshake(self, sock: ssl.SSLSocket, client_address: Any) -> bool:
        previous = sock.gettimeout()
        try:
            sock.settimeout(self.tls_handshake_timeout)
            sock.do_handshake()
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":
                _answer_plain_http(sock)
            self._handshake_failed(client_address, _ssl_problem(exc))
            return False
        except (OSError, ValueError) as exc:  # timeout, reset, closed
            self._handshake_failed(client_address, _ssl_problem(exc))
            return False
        try:
            sock.settimeout(previous)
        except OSError:
            return False
        tls = self.web_config_watcher.current().config.tls
        if tls is not None and tls.client_allowed_sans is not None:
            try:
                peer = sock.getpeercert()
            except (OSError, ValueError):
                peer = None
            if not client_sans_allowed(tls, peer):
                self._handshake_failed(client_address, "client certificate has none of client_allowed_sans")
                return False
        return True


def _peer(client_address: Any) -> str:
    if isinstance(client_address, tuple) and len(client_address) >= 2:
        return f"{client_address[0]}:{client_address[1]}"
    return str(client_address)


def _answer_plain_http(sock: ssl.SSLSocket) -> None:
    """Best effort: tell a plain HTTP client what went wrong, then close without a reset."""
    try:
        raw = socket.socket(fileno=os.dup(sock.fileno()))
    except OSError:
        return
    with raw:
        try:
            raw.settimeout(1.0)
            raw.sendall(_PLAIN_HTTP_REPLY)
            raw.shutdown(socket.SHUT_WR)
            # Drain what the client sent so that closing does not reset the connection (and lose
            # our answer); bounded in time and size.
            deadline = time.monotonic() + 1.0
            received = 0
            while received < 65536 and time.monotonic() < deadline:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                received += len(chunk)
        except OSError:
            pass


class TLSThreadingHTTPServer(TLSServerMixin, http.server.ThreadingHTTPServer):
    """`http.server.ThreadingHTTPServer` serving TLS per the web config (see `TLSServerMixin`)."""
