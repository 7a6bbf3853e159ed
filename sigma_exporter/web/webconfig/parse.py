"""Pure parsing of a web config: a YAML document in, a `WebConfig` or a `WebConfigError` out, on the walker
the main config uses (so errors read `FILE: KEY: problem` in both)."""

from __future__ import annotations

import ipaddress
import os
import re
from types import MappingProxyType
from typing import Final

from sigma_exporter.config.durations import parse_go_duration
from sigma_exporter.config.walker import Section, kind_of, parse_document, read_file
from sigma_exporter.web.webconfig.model import (
    ALLOWED_HEADERS,
    CIPHER_SUITES_TLS12,
    CIPHER_SUITES_TLS13,
    CLIENT_AUTH_TYPES,
    CURVES,
    TLS_VERSIONS,
    RateLimitConfig,
    TLSServerConfig,
    WebConfig,
    WebConfigError,
)

_CLIENT_AUTH_ALIASES: Final = {"RequireClientCert": "RequireAnyClientCert", "": "NoClientCert"}
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
BCRYPT_MIN_COST: Final = 4
_BCRYPT_MAX_COST: Final = 31


def _join_dir(base_dir: str | None, path: str | None) -> str | None:
    """Like the toolkit's config_util.JoinDir: relative paths are relative to the config's directory."""
    if path is None or base_dir is None or os.path.isabs(path):
        return path
    return os.path.join(base_dir, path)


def _parse_tls(tls: Section, base_dir: str | None) -> TLSServerConfig | None:
    cert = tls.string("cert")
    key = tls.string("key")
    client_ca = tls.string("client_ca")
    cert_file = _join_dir(base_dir, tls.string("cert_file"))
    key_file = _join_dir(base_dir, tls.string("key_file"))
    client_ca_file = _join_dir(base_dir, tls.string("client_ca_file"))
    raw_auth = tls.string("client_auth_type") or ""
    client_auth = _CLIENT_AUTH_ALIASES.get(raw_auth, raw_auth)
    if client_auth not in CLIENT_AUTH_TYPES:
        raise tls.error(
            "client_auth_type",
            f"invalid value {raw_auth!r} (expected one of {', '.join(CLIENT_AUTH_TYPES)})",
        )
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = tls.get(name)
        if version is None:
            version = default
        if not isinstance(version, str) or version not in TLS_VERSIONS:
            raise tls.error(
                name, f"unknown TLS version {version!r} (expected one of {', '.join(TLS_VERSIONS)})"
            )
        versions[name] = version
    ciphers = tls.strings("cipher_suites") or ()
    for i, suite in enumerate(ciphers):
        if suite not in CIPHER_SUITES_TLS12 and suite not in CIPHER_SUITES_TLS13:
            raise tls.error(f"cipher_suites[{i}]", f"unknown cipher: {suite}")
    curves = tls.strings("curve_preferences") or ()
    for i, curve in enumerate(curves):
        if curve not in CURVES:
            raise tls.error(
                f"curve_preferences[{i}]",
                f"unknown curve: {curve} (expected one of {', '.join(sorted(CURVES))})",
            )
    sans = tls.strings("client_allowed_sans")
    prefer = tls.flag("prefer_server_cipher_suites", True)
    tls.done(_TLS_KEYS)

    # The toolkit's TLSConfig.IsEnabled: only these keys turn TLS on.
    if not any((cert, key, client_ca, cert_file, key_file, client_ca_file, raw_auth)):
        return None
    if not cert_file and not cert:
        raise tls.here("missing one of cert or cert_file")
    if not key_file and not key:
        raise tls.here("missing one of key or key_file")
    if (client_ca_file or client_ca) and client_auth == "NoClientCert":
        raise tls.error(
            "client_auth_type",
            "client CA's have been configured without a Client Auth Policy "
            "(set client_auth_type, e.g. RequireAndVerifyClientCert)",
        )
    if sans is not None and client_auth not in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        raise tls.error(
            "client_allowed_sans",
            "requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert",
        )
    if client_auth == "RequireAnyClientCert" and not (client_ca_file or client_ca):
        raise tls.error(
            "client_auth_type",
            "RequireAnyClientCert without client_ca_file or client_ca is not supported: Python's ssl "
            "module verifies every client certificate; set client_ca_file (client certificates are "
            "then verified against it) or use RequireAndVerifyClientCert",
        )
    if TLS_VERSIONS[versions["min_version"]] > TLS_VERSIONS[versions["max_version"]]:
        raise tls.error(
            "min_version", f"{versions['min_version']} is above max_version {versions['max_version']}"
        )
    return TLSServerConfig(
        cert_file=cert_file,
        key_file=key_file,
        cert=cert,
        key=key,
        client_ca_file=client_ca_file,
        client_ca=client_ca,
        client_auth_type=client_auth,
        client_allowed_sans=tuple(normalize_san(s) for s in sans) if sans is not None else None,
        min_version=versions["min_version"],
        max_version=versions["max_version"],
        cipher_suites=ciphers,
        prefer_server_cipher_suites=prefer,
        curve_preferences=curves,
        source=tls.source,
    )


def _header_value_ok(value: str) -> bool:
    return all(ch == "\t" or " " <= ch <= "~" for ch in value)


def _parse_http(http: Section) -> tuple[bool, dict[str, str]]:
    http2 = http.flag("http2", True)
    section = http.section("headers")
    headers: dict[str, str] = {}
    for name, raw_value in section.data.items():
        key = str(name)
        section.get(key)
        if not isinstance(name, str) or name not in ALLOWED_HEADERS:
            raise section.error(
                key, f"HTTP header {key!r} can not be configured (allowed: {', '.join(ALLOWED_HEADERS)})"
            )
        if raw_value is None:
            continue
        # YAML reads `X-XSS-Protection: 1` as a number; the toolkit (Go) takes the text.
        value = (
            str(raw_value) if isinstance(raw_value, int) and not isinstance(raw_value, bool) else raw_value
        )
        if not isinstance(value, str):
            raise section.error(key, f"should be a string, got {kind_of(value)} (quote the value)")
        allowed = ALLOWED_HEADERS[name]
        if allowed is not None and value not in allowed:
            raise section.error(key, f"invalid value {value!r} (expected one of: {', '.join(allowed)})")
        if not _header_value_ok(value):
            raise section.error(key, "the value must be printable ASCII on one line (no control characters)")
        if value:  # "Unset if blank"
            headers[name] = value
    http.done(_HTTP_KEYS)
    return http2, headers


def bcrypt_cost(hashed: str) -> int | None:
    """The cost of a bcrypt hash in the formats we can verify ($2a$, $2b$, $2y$), else None."""
    match = _BCRYPT_HASH.fullmatch(hashed)
    if match is None:
        return None
    cost = int(match.group(1))
    return cost if BCRYPT_MIN_COST <= cost <= _BCRYPT_MAX_COST else None


def _parse_users(top: Section) -> dict[str, str]:
    value = top.get("basic_auth_users")
    if value is not None and not isinstance(value, dict):
        raise top.error("basic_auth_users", f"should be a mapping of user: bcrypt hash, got {kind_of(value)}")
    section = top.section("basic_auth_users")
    users: dict[str, str] = {}
    for raw_name, hashed in section.data.items():
        name = str(raw_name) if isinstance(raw_name, int) and not isinstance(raw_name, bool) else raw_name
        if not isinstance(name, str):
            raise section.error(str(name), "a user name must be a string (quote it in the YAML)")
        if not isinstance(hashed, str) or bcrypt_cost(hashed) is None:
            # Never echo the value: it is (or was meant to be) a password hash.
            raise section.error(
                name,
                "not a bcrypt hash ($2a$, $2b$ or $2y$, cost 4..31, 60 characters; "
                "make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
            )
        users[name] = hashed
    return users


def _parse_rate_limit(section: Section) -> RateLimitConfig | None:
    raw_interval = section.get("interval")
    if raw_interval is None:
        raw_interval = 0
    if isinstance(raw_interval, bool) or not isinstance(raw_interval, (str, int)):
        raise section.error("interval", f"should be a duration such as 1s, got {kind_of(raw_interval)}")
    if isinstance(raw_interval, int):  # Go decodes a bare number into a Duration as nanoseconds
        interval: float | None = raw_interval * 1e-9
    else:
        interval = parse_go_duration(raw_interval)
    if interval is None or interval < 0:
        raise section.error("interval", f"invalid duration {raw_interval!r} (examples: 1s, 500ms, 1m)")
    burst = section.integer("burst", 0, minimum=0, maximum=2**31 - 1)
    section.done(_RATE_LIMIT_KEYS)
    if interval == 0:  # "set to 0 to disable rate limiter"
        return None
    return RateLimitConfig(interval_seconds=interval, burst=burst)


def parse_web_config(data: object, source: str, base_dir: str | None = None) -> WebConfig:
    """A parsed YAML document -> `WebConfig`. Pure: touches no file.

    `source` names the file in error messages; relative paths are joined with `base_dir` when given.
    An empty document is a valid file that turns nothing on.
    """
    top = Section(data, "", source)
    tls = _parse_tls(top.section("tls_server_config"), base_dir)
    http2, headers = _parse_http(top.section("http_server_config"))
    users = _parse_users(top)
    rate_limit = _parse_rate_limit(top.section("rate_limit"))
    top.done(_TOP_KEYS)
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
    return parse_web_config(parse_document(text, source), source, base_dir)


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read and parse a web config file. The TLS files it names are checked by `build_ssl_context`."""
    path = os.fspath(path)
    return parse_web_config_text(
        read_file(path, "web config file"), path, os.path.dirname(os.path.abspath(path))
    )


def normalize_san(value: str) -> str:
    """IP addresses compared the way Go prints them (lower case, `::` compressed, v4-mapped as v4)."""
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return value
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


__all__ = ["WebConfigError", "bcrypt_cost", "load_web_config", "parse_web_config"]
