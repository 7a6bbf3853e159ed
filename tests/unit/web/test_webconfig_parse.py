"""`--web.config.file` (exporter-toolkit format): parsing, bcrypt basic auth, SSL contexts, and a real
loopback TLS server: the exporter's own WebServer and request middleware.

Certificates are generated per test session with the `cryptography` package into tmp dirs.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from sigma_exporter.metrics.exposition import ProcessPart
from sigma_exporter.web.routes import Routes
from sigma_exporter.web.server import Limits, WebServer
from sigma_exporter.web.stats import ServerStats
from sigma_exporter.web.webconfig import (
    ALLOWED_HEADERS,
    BasicAuthenticator,
    RateLimitConfig,
    RateLimiter,
    TLSServerConfig,
    WebConfig,
    WebConfigError,
    WebConfigSecurity,
    WebConfigWatcher,
    bcrypt_cost,
    build_ssl_context,
    client_sans_allowed,
    load_web_config,
    parse_basic_authorization,
    parse_go_duration,
    parse_web_config,
    parse_web_config_text,
    validate_web_config_file,
)
from tests.support.net import wait_for
from tests.support.pki import PKI, Issued, issue, write
from tests.support.webconfig import basic, hash_password

LOGGER = "sigma_exporter.web.webconfig"
DEADLINE = 10.0

# --------------------------------------------------------------------------------------------------
# Parsing: valid files (the toolkit's documented examples)
# --------------------------------------------------------------------------------------------------

# docs/web-config.yml of the exporter toolkit.
TOOLKIT_SAMPLE = """\
# TLS and basic authentication configuration example.
#
# Additionally, a certificate and a key file are needed.
tls_server_config:
  cert_file: server.crt
  key_file: server.key

# Usernames and passwords required to connect.
# Passwords are hashed with bcrypt: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md#about-bcrypt.
basic_auth_users:
  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze
  bob: $2y$10$hLqFl9jSjoAAy95Z/zw8Ye8wkdMBM8c5Bn1ptYqP/AXyV0.oy0S8m

# Rate limiting requests on the endpoint using a token bucket
rate_limit:
  interval: "1s" # time interval between two requests, set to 0 to disable rate limiter
  burst: 20 # and permits a burst of up to 20 requests.
"""


def test_toolkit_sample_file_parses_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", TOOLKIT_SAMPLE)
    config = load_web_config(path)
    assert config.tls is not None
    assert config.tls.cert_file == str(tmp_path / "server.crt")
    assert config.tls.key_file == str(tmp_path / "server.key")
    assert config.tls.client_auth_type == "NoClientCert"
    assert (config.tls.min_version, config.tls.max_version) == ("TLS12", "TLS13")
    assert sorted(config.users) == ["alice", "bob"]
    assert config.users["alice"].startswith("$2y$10$")
    assert config.rate_limit == RateLimitConfig(interval_seconds=1.0, burst=20)
    assert config.auth_required
    assert config.source == str(path)


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    config = parse_web_config(
        {"tls_server_config": {"cert_file": "/etc/a.crt", "key_file": "b.key"}}, "web.yml", "/conf"
    )
    assert config.tls is not None
    assert (config.tls.cert_file, config.tls.key_file) == ("/etc/a.crt", "/conf/b.key")


def test_all_toolkit_headers_are_accepted() -> None:
    # web/testdata/web_config_headers.good.yml (X-XSS-Protection: 1 is a YAML number there).
    config = parse_web_config_text(
        """
http_server_config:
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000; includeSubDomains
    X-Content-Type-Options: nosniff
    X-XSS-Protection: 1
    Content-Security-Policy: "default-src 'self' *.test.example.net"
""",
        "headers.yml",
    )
    assert dict(config.headers) == {
        "X-Frame-Options": "deny",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-XSS-Protection": "1",
        "Content-Security-Policy": "default-src 'self' *.test.example.net",
    }
    assert config.tls is None
    assert not config.auth_required
    assert set(config.headers) == set(ALLOWED_HEADERS)


def test_blank_header_is_unset_and_http2_is_accepted() -> None:
    config = parse_web_config(
        {"http_server_config": {"http2": False, "headers": {"Content-Security-Policy": ""}}}, "w.yml"
    )
    assert config.headers == {}
    assert config.http2 is False


def test_all_toolkit_ciphers_and_curves_are_accepted(tls_dir: Path) -> None:
    # web/testdata/web_config_noAuth_allCiphers.good.yml and ..._allCurves.good.yml
    ciphers = """
  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
  - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
  - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
  - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
  - TLS_AES_128_GCM_SHA256
  - TLS_AES_256_GCM_SHA384
  - TLS_CHACHA20_POLY1305_SHA256
  - TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
  - TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
  - TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
  - TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
  - TLS_RSA_WITH_AES_128_CBC_SHA
  - TLS_RSA_WITH_AES_256_CBC_SHA
  - TLS_RSA_WITH_AES_128_GCM_SHA256
  - TLS_RSA_WITH_AES_256_GCM_SHA384"""
    text = f"""
tls_server_config:
  cert_file: "server.crt"
  key_file: "server.key"
  client_auth_type: "VerifyClientCertIfGiven"
  cipher_suites:{ciphers}
  curve_preferences: [CurveP256, CurveP384, CurveP521, X25519, X25519MLKEM768]
  prefer_server_cipher_suites: false
"""
    config = validate_web_config_file(write(tls_dir / "web.yml", text))
    assert config.tls is not None
    assert len(config.tls.cipher_suites) == 17
    assert config.tls.prefer_server_cipher_suites is False
    assert config.tls.curve_preferences[-1] == "X25519MLKEM768"


def test_inline_cert_key_and_client_ca(pki: PKI) -> None:
    def block(pem: bytes) -> str:
        return "|\n" + "".join("    " + line + "\n" for line in pem.decode().splitlines())

    text = (
        "tls_server_config:\n"
        f"  cert: {block(pki.server.cert_pem)}"
        f"  key: {block(pki.server.key_pem)}"
        f"  client_ca: {block(pki.client_ca.cert_pem)}"
        "  client_auth_type: RequireAndVerifyClientCert\n"
    )
    config = parse_web_config_text(text, "inline.yml")
    assert config.tls is not None
    assert config.tls.cert_file is None
    assert config.tls.key is not None
    assert "PRIVATE KEY" not in repr(config), "the inline key must not show in repr"
    ctx = build_ssl_context(config.tls)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "test client CA"),),)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment\n",
        "tls_server_config:\n",
        "tls_server_config: {min_version: TLS13}\n",  # no cert/key/CA/auth key: TLS stays off
        "basic_auth_users: {}\nhttp_server_config: {}\nrate_limit: {interval: 0}\n",
    ],
)
def test_files_that_turn_nothing_on(text: str) -> None:
    config = parse_web_config_text(text, "w.yml")
    assert config.tls is None
    assert not config.users
    assert config.rate_limit is None


# --------------------------------------------------------------------------------------------------
# Parsing: invalid files, each with a message naming the file and the key
# --------------------------------------------------------------------------------------------------

GOOD_HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"
TLS = "tls_server_config:\n  cert_file: s.crt\n  key_file: s.key\n"

INVALID = [
    ("junk_key: 1\n", "junk_key", "unknown key"),
    ("tls_server_config:\n  cert_fil: a\n  key_file: b\n", "tls_server_config.cert_fil", "unknown key"),
    ("http_server_config:\n  http3: true\n", "http_server_config.http3", "unknown key"),
    ("rate_limit:\n  burst: 1\n  period: 1s\n", "rate_limit.period", "unknown key"),
    ("tls_server_config:\n  cert_file: s.crt\n", "tls_server_config", "missing one of key or key_file"),
    ("tls_server_config:\n  key_file: s.key\n", "tls_server_config", "missing one of cert or cert_file"),
    (
        "tls_server_config:\n  client_auth_type: RequireAndVerifyClientCert\n",
        "tls_server_config",
        "missing one of cert",
    ),
    (
        "tls_server_config:\n  cert_file: [a]\n  key_file: b\n",
        "tls_server_config.cert_file",
        "should be a string",
    ),
    (
        TLS + "  client_auth_type: Whatever\n",
        "tls_server_config.client_auth_type",
        "invalid value 'Whatever'",
    ),
    (TLS + "  min_version: TLS14\n", "tls_server_config.min_version", "unknown TLS version 'TLS14'"),
    (TLS + "  max_version: SSL3\n", "tls_server_config.max_version", "unknown TLS version"),
    (
        TLS + "  min_version: TLS13\n  max_version: TLS12\n",
        "tls_server_config.min_version",
        "above max_version",
    ),
    (
        TLS + "  cipher_suites: [TLS_INVENTED_CIPHER]\n",
        "tls_server_config.cipher_suites[0]",
        "unknown cipher",
    ),
    (
        TLS + "  cipher_suites: [TLS_RSA_WITH_3DES_EDE_CBC_SHA]\n",  # insecure: refused by Go too
        "tls_server_config.cipher_suites[0]",
        "unknown cipher",
    ),
    (
        TLS + "  curve_preferences: [CurveP256, P-999]\n",
        "tls_server_config.curve_preferences[1]",
        "unknown curve",
    ),
    (
        TLS + "  client_ca_file: ca.crt\n",
        "tls_server_config.client_auth_type",
        "without a Client Auth Policy",
    ),
    (
        TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [a]\n",
        "tls_server_config.client_allowed_sans",
        "requires client_auth_type",
    ),
    (
        TLS + "  client_allowed_sans: [a]\n",
        "tls_server_config.client_allowed_sans",
        "requires client_auth_type",
    ),
    (
        TLS + "  client_auth_type: RequireAnyClientCert\n",
        "tls_server_config.client_auth_type",
        "not supported",
    ),
    (
        TLS + "  prefer_server_cipher_suites: 'yes'\n",
        "tls_server_config.prefer_server_cipher_suites",
        "true or false",
    ),
    ("http_server_config:\n  http2: 1\n", "http_server_config.http2", "true or false"),
    (
        "http_server_config:\n  headers:\n    Content-Type: text/html\n",
        "http_server_config.headers.Content-Type",
        "can not be configured",
    ),
    (
        "http_server_config:\n  headers:\n    Authorization: x\n",
        "http_server_config.headers.Authorization",
        "can not be configured",
    ),
    (
        "http_server_config:\n  headers:\n    x-frame-options: deny\n",  # names are case-sensitive, as in Go
        "http_server_config.headers.x-frame-options",
        "can not be configured",
    ),
    (
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        "http_server_config.headers.X-Frame-Options",
        "expected one of: deny, sameorigin",
    ),
    (
        "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
        "http_server_config.headers.X-Content-Type-Options",
        "expected one of: nosniff",
    ),
    (
        'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\r\\nSet-Cookie: x=1"\n',
        "http_server_config.headers.Content-Security-Policy",
        "printable ASCII",
    ),
    ("http_server_config:\n  headers: [a]\n", "http_server_config.headers", "should be a mapping"),
    ("basic_auth_users:\n  alice: hunter2\n", "basic_auth_users.alice", "not a bcrypt hash"),
    ("basic_auth_users:\n  alice:\n", "basic_auth_users.alice", "not a bcrypt hash"),
    (f"basic_auth_users:\n  alice: '{GOOD_HASH[:-1]}'\n", "basic_auth_users.alice", "not a bcrypt hash"),
    (
        f"basic_auth_users:\n  alice: '{GOOD_HASH.replace('$10$', '$99$')}'\n",
        "basic_auth_users.alice",
        "bcrypt",
    ),
    (f"basic_auth_users:\n  - alice: {GOOD_HASH}\n", "basic_auth_users", "should be a mapping"),
    ("rate_limit:\n  interval: soon\n  burst: 1\n", "rate_limit.interval", "invalid duration"),
    ("rate_limit:\n  interval: 1s\n  burst: many\n", "rate_limit.burst", "should be a whole number"),
    ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst", "should be between 0 and"),
    ("tls_server_config: [a]\n", "tls_server_config", "should be a mapping"),
    ("- a\n- b\n", "", "should be a mapping"),
    ("basic_auth_users: {}\nbasic_auth_users: {}\n", "", "duplicate key"),
    ("tls_server_config:\n  cert_file: 'a\n", "", "invalid YAML"),
]


@pytest.mark.parametrize(("text", "key", "problem"), INVALID)
def test_invalid_files_name_the_file_and_the_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path / "bad-web.yml", text)
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert info.value.source == str(path)
    if key:
        assert info.value.key == key, message
        assert f": {key}: " in message
    assert problem in message


def test_bad_hash_is_not_echoed() -> None:
    secret_looking = "$2y$10$thisisnotlongenoughtobeahash"
    with pytest.raises(WebConfigError) as info:
        parse_web_config({"basic_auth_users": {"alice": secret_looking}}, "w.yml")
    assert secret_looking not in str(info.value)
    assert "basic_auth_users.alice" in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError) as info:
        load_web_config(tmp_path / "nope.yml")
    assert str(tmp_path / "nope.yml") in str(info.value)
    assert "cannot read" in str(info.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("1s", 1.0),
        ("250ms", 0.25),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("10us", 1e-5),
        ("-1s", -1.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1 s", "1d", "1s2", "--1s"])
def test_invalid_go_durations(text: str) -> None:
    assert parse_go_duration(text) is None


# --------------------------------------------------------------------------------------------------
# Basic auth
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users() -> dict[str, str]:
    return {"alice": hash_password("wonderland"), "bob": hash_password("builder", cost=5)}


def test_basic_auth_right_wrong_and_unknown(users: dict[str, str]) -> None:
    config = WebConfig(users=users)
    auth = BasicAuthenticator()
    assert auth.check_basic_auth(config, basic("alice", "wonderland"))
    assert auth.check_basic_auth(config, basic("bob", "builder"))
    assert not auth.check_basic_auth(config, basic("alice", "builder"))
    assert not auth.check_basic_auth(config, basic("alice", ""))
    assert not auth.check_basic_auth(config, basic("carol", "wonderland"))
    assert not auth.check_basic_auth(config, basic("Alice", "wonderland"))
    assert not auth.check_basic_auth(config, None)
    assert not auth.check_basic_auth(config, "Bearer abc")
    assert not auth.check_basic_auth(config, "Basic !!!notbase64")
    assert not auth.check_basic_auth(config, "Basic " + base64.b64encode(b"alice").decode())  # no colon


def test_no_users_means_no_auth() -> None:
    auth = BasicAuthenticator()
    assert auth.check_basic_auth(WebConfig(), None)
    assert auth.check_basic_auth(WebConfig(), "garbage")


def test_successes_are_cached_failures_are_not(users: dict[str, str]) -> None:
    config = WebConfig(users=users)
    auth = BasicAuthenticator()
    assert auth.check_basic_auth(config, basic("alice", "wonderland"))
    assert auth.bcrypt_checks == 1
    for _ in range(5):
        assert auth.check_basic_auth(config, basic("alice", "wonderland"))
    assert (auth.bcrypt_checks, auth.cache_hits) == (1, 5)
    for _ in range(3):
        assert not auth.check_basic_auth(config, basic("alice", "wrong"))
    assert auth.bcrypt_checks == 4, "every failure pays bcrypt"
    cache_keys = list(auth._cache)
    assert all(len(k) == 32 and b"wonderland" not in k for k in cache_keys)


def test_password_change_invalidates_the_cache(users: dict[str, str]) -> None:
    auth = BasicAuthenticator()
    assert auth.check_basic_auth(WebConfig(users=users), basic("alice", "wonderland"))
    changed = WebConfig(users={**users, "alice": hash_password("looking-glass")})
    assert not auth.check_basic_auth(changed, basic("alice", "wonderland"))
    assert auth.check_basic_auth(changed, basic("alice", "looking-glass"))


def test_unknown_user_is_checked_against_a_decoy_of_the_highest_cost(users: dict[str, str]) -> None:
    auth = BasicAuthenticator()
    config = WebConfig(users=users)
    assert bcrypt_cost(auth.decoy_hash(config.users).decode()) == 5
    assert auth.decoy_hash(config.users) is auth.decoy_hash(config.users), "made once per cost"
    before = auth.bcrypt_checks
    for _ in range(2):
        assert not auth.check_basic_auth(config, basic("mallory", "wonderland"))
    assert auth.bcrypt_checks == before + 2, "unknown users always cost a bcrypt comparison"


def test_unknown_user_takes_about_as_long_as_a_wrong_password() -> None:
    config = WebConfig(users={"alice": hash_password("pw", cost=8)})
    auth = BasicAuthenticator()
    auth.decoy_hash(config.users)  # made once per process; not part of the per-request time

    def best_of(header: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            assert not auth.check_basic_auth(config, header)
            times.append(time.perf_counter() - start)
        return min(times)

    wrong_password = best_of(basic("alice", "nope"))
    unknown_user = best_of(basic("nobody", "nope"))
    assert unknown_user > wrong_password * 0.5, (unknown_user, wrong_password)


def test_2y_hashes_as_written_by_htpasswd_verify() -> None:
    hashed = "$2y$" + hash_password("secret")[4:]
    config = parse_web_config({"basic_auth_users": {"alice": hashed}}, "w.yml")
    auth = BasicAuthenticator()
    assert auth.check_basic_auth(config, basic("alice", "secret"))
    assert not auth.check_basic_auth(config, basic("alice", "Secret"))


def test_passwords_longer_than_72_bytes_compare_like_go() -> None:
    long_password = "x" * 72
    config = WebConfig(users={"alice": hash_password(long_password)})
    auth = BasicAuthenticator()
    assert auth.check_basic_auth(config, basic("alice", long_password + "ignored by bcrypt"))


def test_parse_basic_authorization() -> None:
    assert parse_basic_authorization(basic("a", "b:c")) == ("a", b"b:c")
    assert parse_basic_authorization("basic " + base64.b64encode(b"u:p").decode()) == ("u", b"p")
    assert parse_basic_authorization("Basic") is None
    assert parse_basic_authorization("Basic dTpwdw==") == ("u", b"pw")
    assert parse_basic_authorization("Basic dTpwdw") is None  # missing padding, as in Go


def test_cache_is_bounded(users: dict[str, str]) -> None:
    auth = BasicAuthenticator(cache_size=3)
    many = {f"u{i}": hash_password(f"p{i}") for i in range(6)}
    config = WebConfig(users=many)
    for i in range(6):
        assert auth.check_basic_auth(config, basic(f"u{i}", f"p{i}"))
    assert len(auth._cache) <= 3


def test_rate_limiter_token_bucket() -> None:
    now = [100.0]
    limiter = RateLimiter(RateLimitConfig(interval_seconds=1.0, burst=2), clock=lambda: now[0])
    assert [limiter.allow() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert not limiter.allow()
    now[0] += 0.5
    assert limiter.allow()
    now[0] += 10
    assert [limiter.allow() for _ in range(3)] == [True, True, False], "never more than burst"
    zero = RateLimiter(RateLimitConfig(interval_seconds=1.0, burst=0), clock=lambda: now[0])
    assert not zero.allow(), "burst 0 allows nothing (as Go's rate.Limiter)"


# --------------------------------------------------------------------------------------------------
# SSL contexts
# --------------------------------------------------------------------------------------------------


def tls_config(tls_dir: Path, **kwargs: object) -> TLSServerConfig:
    data: dict[str, object] = {"cert_file": "server.crt", "key_file": "server.key", **kwargs}
    config = parse_web_config({"tls_server_config": data}, str(tls_dir / "web.yml"), str(tls_dir))
    assert config.tls is not None
    return config.tls


@pytest.mark.parametrize(
    ("auth_type", "mode"),
    [
        ("NoClientCert", ssl.CERT_NONE),
        ("RequestClientCert", ssl.CERT_NONE),
        ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
        ("RequireAnyClientCert", ssl.CERT_REQUIRED),
        ("RequireClientCert", ssl.CERT_REQUIRED),
        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
    ],
)
def test_client_auth_type_sets_verify_mode(tls_dir: Path, auth_type: str, mode: ssl.VerifyMode) -> None:
    extra = {} if auth_type == "NoClientCert" else {"client_ca_file": "client-ca.crt"}
    ctx = build_ssl_context(tls_config(tls_dir, client_auth_type=auth_type, **extra))
    assert ctx.verify_mode == mode
    if mode != ssl.CERT_NONE:
        assert len(ctx.get_ca_certs()) == 1


def test_versions_and_ciphers_are_applied(tls_dir: Path) -> None:
    ctx = build_ssl_context(
        tls_config(
            tls_dir,
            min_version="TLS12",
            max_version="TLS12",
            cipher_suites=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"],
        )
    )
    assert (ctx.minimum_version, ctx.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES256-GCM-SHA384"}
    assert ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx13 = build_ssl_context(tls_config(tls_dir, min_version="TLS13", prefer_server_cipher_suites=False))
    assert ctx13.minimum_version == ssl.TLSVersion.TLSv1_3
    assert not ctx13.options & ssl.OP_CIPHER_SERVER_PREFERENCE


def test_tls10_is_accepted_without_warnings(tls_dir: Path, recwarn: pytest.WarningsRecorder) -> None:
    ctx = build_ssl_context(tls_config(tls_dir, min_version="TLS10"))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_ssl_context_errors_name_the_key(tls_dir: Path, pki: PKI) -> None:
    with pytest.raises(WebConfigError, match=r"tls_server_config\.cert_file: cannot read .*missing\.crt"):
        build_ssl_context(tls_config(tls_dir, cert_file="missing.crt"))
    write(tls_dir / "other.key", pki.other_server.key_pem)
    with pytest.raises(WebConfigError, match=r"cert_file / tls_server_config\.key_file: failed to load"):
        build_ssl_context(tls_config(tls_dir, key_file="other.key"))
    write(tls_dir / "encrypted.key", issue(pki.server_ca, "x", password=b"pw").key_pem)
    with pytest.raises(WebConfigError, match=r"key_file: the private key is encrypted"):
        build_ssl_context(tls_config(tls_dir, key_file="encrypted.key"))
    write(tls_dir / "empty-ca.crt", "not a certificate\n")
    with pytest.raises(WebConfigError, match=r"client_ca_file: failed to load the client CA"):
        build_ssl_context(
            tls_config(tls_dir, client_ca_file="empty-ca.crt", client_auth_type="RequireAndVerifyClientCert")
        )


def test_client_sans_allowed_compares_like_go(tls_dir: Path) -> None:
    tls = tls_config(
        tls_dir,
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file="client-ca.crt",
        client_allowed_sans=["prometheus.example.com", "2001:db8::1"],
    )
    assert client_sans_allowed(tls, {"subjectAltName": (("DNS", "prometheus.example.com"),)})
    assert client_sans_allowed(tls, {"subjectAltName": (("IP Address", "2001:DB8:0:0:0:0:0:1\n"),)})
    assert not client_sans_allowed(tls, {"subjectAltName": (("DNS", "other.example.com"),)})
    assert not client_sans_allowed(tls, {"subject": ((("commonName", "prometheus.example.com"),),)})
    assert not client_sans_allowed(tls, None)
    assert client_sans_allowed(tls_config(tls_dir), None), "no client_allowed_sans: no check"


# --------------------------------------------------------------------------------------------------
# A real loopback server: the exporter's WebServer and request middleware, with a test endpoint
# --------------------------------------------------------------------------------------------------


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello\n")


@contextlib.contextmanager
def serving(watcher: WebConfigWatcher) -> Iterator[WebServer]:
    stats = ServerStats()
    routes = Routes(None, ProcessPart(), list, WebConfigSecurity(watcher), stats)  # type: ignore[arg-type]
    app = web.Application(middlewares=[routes.middleware])
    app.on_response_prepare.append(routes.add_headers)
    app.router.add_get("/metrics", hello)
    app.router.add_get("/", hello)
    server = WebServer(
        app, ("127.0.0.1", 0), limits=Limits(tls_handshake_timeout=2.0), stats=stats, watcher=watcher
    ).start()
    try:
        yield server
    finally:
        server.stop(DEADLINE)
        assert not server._thread.is_alive()


def client_context(ca: Issued, tmp: Path, cert: Issued | None = None) -> ssl.SSLContext:
    ca_path = tmp / f"trust-{abs(hash(ca.cert_pem))}.pem"
    ca_path.write_bytes(ca.cert_pem)
    ctx = ssl.create_default_context(cafile=str(ca_path))
    if cert is not None:
        cert_path, key_path = tmp / "client.crt", tmp / "client.key"
        cert_path.write_bytes(cert.cert_pem)
        key_path.write_bytes(cert.key_pem)
        ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


def https_get(
    server: WebServer, ctx: ssl.SSLContext, headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPMessage]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPSConnection(str(host), int(port), context=ctx, timeout=5)
    try:
        conn.request("GET", "/metrics", headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def fails_tls(server: WebServer, ctx: ssl.SSLContext) -> bool:
    """True when no HTTP answer comes back (with TLS 1.3 a refused client cert shows on first read)."""
    try:
        https_get(server, ctx)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return True
    return False


def web_yml(tls_dir: Path, text: str) -> Path:
    return write(tls_dir / "web.yml", text)


SERVER_TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"


def test_https_with_the_ca_works_and_headers_are_sent(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(tls_dir, SERVER_TLS + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    with serving(WebConfigWatcher(path)) as server:
        status, body, headers = https_get(server, client_context(pki.server_ca, tls_dir))
        assert (status, body) == (200, b"hello\n")
        assert headers["X-Frame-Options"] == "deny"
        assert fails_tls(server, client_context(pki.other_server_ca, tls_dir)), "an untrusted CA must fail"


def test_plain_http_to_the_tls_port_fails_cleanly(
    tls_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    path = web_yml(tls_dir, SERVER_TLS)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with serving(WebConfigWatcher(path)) as server:
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
        try:
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            assert response.status == 400
            assert b"HTTP request to an HTTPS server" in response.read()
        finally:
            conn.close()
        wait_for(lambda: server.tls_handshake_failures == 1, DEADLINE, what="the failure to be counted")
        # Still serving TLS.
        assert https_get(server, client_context(pki.server_ca, tls_dir))[0] == 200
    lines = [r for r in caplog.records if r.name == LOGGER and "TLS handshake" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.DEBUG
    assert "Traceback" not in capfd.readouterr().err


def test_silent_and_vanishing_clients_do_not_block_the_server(
    tls_dir: Path, pki: PKI, capfd: pytest.CaptureFixture[str]
) -> None:
    path = web_yml(tls_dir, SERVER_TLS)
    with serving(WebConfigWatcher(path)) as server:
        host, port = server.server_address[:2]
        address = (str(host), int(port))
        silent = socket.create_connection(address, timeout=5)  # connects, never says hello
        try:
            for _ in range(3):  # connect and go away at once
                socket.create_connection(address, timeout=5).close()
            with socket.create_connection(address, timeout=5) as garbage:
                garbage.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
            start = time.monotonic()
            assert https_get(server, client_context(pki.server_ca, tls_dir))[0] == 200
            assert time.monotonic() - start < 1.5, "the silent client must not delay others"
            # The silent client is dropped after tls_handshake_timeout.
            silent.settimeout(DEADLINE)
            assert silent.recv(1) == b""
        finally:
            silent.close()
        wait_for(lambda: server.tls_handshake_failures >= 5, DEADLINE, what="all handshake failures counted")
    assert "Traceback" not in capfd.readouterr().err


def test_required_client_cert(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(
        tls_dir,
        SERVER_TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        assert fails_tls(server, client_context(pki.server_ca, tls_dir)), "no client cert"
        assert fails_tls(server, client_context(pki.server_ca, tls_dir, pki.rogue_client)), "untrusted CA"
        status, body, _ = https_get(server, client_context(pki.server_ca, tls_dir, pki.client))
        assert (status, body) == (200, b"hello\n")


def test_optional_client_cert_is_verified_when_given(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(
        tls_dir,
        SERVER_TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: client-ca.crt\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        assert https_get(server, client_context(pki.server_ca, tls_dir))[0] == 200
        assert https_get(server, client_context(pki.server_ca, tls_dir, pki.client))[0] == 200
        assert fails_tls(server, client_context(pki.server_ca, tls_dir, pki.rogue_client))


def test_client_allowed_sans(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(
        tls_dir,
        SERVER_TLS
        + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.crt\n"
        + "  client_allowed_sans: [prometheus.example.com]\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        assert https_get(server, client_context(pki.server_ca, tls_dir, pki.client))[0] == 200
        assert fails_tls(server, client_context(pki.server_ca, tls_dir, pki.client_other_san))


def test_basic_auth_over_tls(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(tls_dir, SERVER_TLS + f"basic_auth_users:\n  alice: '{hash_password('wonderland')}'\n")
    with serving(WebConfigWatcher(path)) as server:
        ctx = client_context(pki.server_ca, tls_dir)
        status, _, headers = https_get(server, ctx)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="sigma-exporter"'
        assert https_get(server, ctx, {"Authorization": basic("alice", "nope")})[0] == 401
        assert https_get(server, ctx, {"Authorization": basic("alice", "wonderland")})[0] == 200


def test_plain_http_with_basic_auth_and_rate_limit(tmp_path: Path) -> None:
    path = write(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  bob: '{hash_password('builder')}'\nrate_limit: {{interval: 1h, burst: 2}}\n",
    )
    with serving(WebConfigWatcher(path)) as server:
        host, port = server.server_address[:2]

        def get(headers: dict[str, str]) -> int:
            conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
            try:
                conn.request("GET", "/", headers=headers)
                return conn.getresponse().status
            finally:
                conn.close()

        assert get({}) == 401
        assert get({"Authorization": basic("bob", "builder")}) == 200
        assert get({"Authorization": basic("bob", "builder")}) == 429


def test_no_web_config_serves_plain_http_without_auth(tmp_path: Path) -> None:
    watcher = WebConfigWatcher(None)
    assert watcher.current().ssl_context is None
    assert watcher.reload()
    with serving(watcher) as server:
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=5)
        try:
            conn.request("GET", "/")
            assert conn.getresponse().status == 200
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------------
# Reloading: rotation, bad files, no restart
# --------------------------------------------------------------------------------------------------


def test_certificate_rotation_applies_to_new_connections(tls_dir: Path, pki: PKI) -> None:
    path = web_yml(tls_dir, SERVER_TLS)
    watcher = WebConfigWatcher(path, check_interval=0.05)
    old_ca, new_ca = client_context(pki.server_ca, tls_dir), client_context(pki.other_server_ca, tls_dir)
    with serving(watcher) as server:
        assert https_get(server, old_ca)[0] == 200
        reloads = watcher.reloads_total
        write(tls_dir / "server.key", pki.other_server.key_pem)
        write(tls_dir / "server.crt", pki.other_server.cert_pem)
        wait_for(lambda: not fails_tls(server, new_ca), DEADLINE, what="the rotated certificate to be served")
        assert fails_tls(server, old_ca)
        assert watcher.last_reload_ok
        assert watcher.reloads_total > reloads


def reload_state(watcher: WebConfigWatcher) -> tuple[bool, str | None]:
    return watcher.last_reload_ok, watcher.last_error


def test_bad_new_file_keeps_the_last_good_one(
    tls_dir: Path, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    password_hash = hash_password("wonderland")
    path = web_yml(tls_dir, SERVER_TLS + f"basic_auth_users:\n  alice: '{password_hash}'\n")
    now = [0.0]
    watcher = WebConfigWatcher(path, check_interval=1.0, clock=lambda: now[0])
    good_time = watcher.last_reload_time
    caplog.set_level(logging.INFO, logger=LOGGER)
    ctx = client_context(pki.server_ca, tls_dir)
    auth = {"Authorization": basic("alice", "wonderland")}
    with serving(watcher) as server:
        web_yml(
            tls_dir,
            SERVER_TLS
            + "  client_auth_type: Sometimes\n"
            + f"basic_auth_users:\n  alice: '{password_hash}'\n",
        )
        for _ in range(3):  # three checks of the same bad file: one log line
            now[0] += 1.0
            assert https_get(server, ctx, auth)[0] == 200
            assert https_get(server, ctx)[0] == 401
        assert not watcher.last_reload_ok
        assert watcher.last_error is not None
        assert str(path) in watcher.last_error
        assert "tls_server_config.client_auth_type" in watcher.last_error
        assert watcher.last_reload_time == good_time
        errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert password_hash not in caplog.text

        # A certificate/key mismatch is bad too: the old certificate keeps being served.
        web_yml(tls_dir, SERVER_TLS + f"basic_auth_users:\n  alice: '{password_hash}'\n")
        write(tls_dir / "server.crt", pki.other_server.cert_pem)  # the key is still the old one
        now[0] += 1.0
        assert https_get(server, ctx, auth)[0] == 200
        assert not watcher.last_reload_ok
        assert "failed to load the certificate and key" in (watcher.last_error or "")
        assert "PRIVATE KEY" not in caplog.text

        # Fixed: new key too. The new certificate is served and the state is good again.
        write(tls_dir / "server.key", pki.other_server.key_pem)
        now[0] += 1.0
        new_ctx = client_context(pki.other_server_ca, tls_dir)
        assert https_get(server, new_ctx, auth)[0] == 200
        assert reload_state(watcher) == (True, None)
        assert watcher.last_reload_time > good_time
        assert watcher.reload_failures_total == 2


def test_changes_are_seen_only_after_the_check_interval(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    now = [0.0]
    watcher = WebConfigWatcher(path, check_interval=1.0, clock=lambda: now[0])
    write(path, "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n")
    now[0] += 0.5
    assert watcher.current().config.headers["X-Frame-Options"] == "deny"
    now[0] += 0.5
    assert watcher.current().config.headers["X-Frame-Options"] == "sameorigin"


def test_password_rotation_without_restart(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", f"basic_auth_users:\n  alice: '{hash_password('one')}'\n")
    watcher = WebConfigWatcher(path, check_interval=3600)
    assert watcher.check_basic_auth(basic("alice", "one"))
    write(path, f"basic_auth_users:\n  alice: '{hash_password('two')}'\n")
    assert watcher.reload(), "an explicit reload does not wait for the interval"
    assert not watcher.check_basic_auth(basic("alice", "one"))
    assert watcher.check_basic_auth(basic("alice", "two"))


def test_tls_cannot_be_switched_by_a_reload(tls_dir: Path) -> None:
    path = web_yml(tls_dir, "basic_auth_users: {}\n")
    watcher = WebConfigWatcher(path)
    web_yml(tls_dir, SERVER_TLS)
    assert not watcher.reload()
    assert watcher.current().ssl_context is None
    assert "restart" in (watcher.last_error or "")


def test_first_load_of_a_bad_file_raises(tls_dir: Path) -> None:
    path = web_yml(tls_dir, "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n")
    with pytest.raises(WebConfigError, match=r"tls_server_config\.cert_file"):
        WebConfigWatcher(path)


def test_deleted_file_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = write(tmp_path / "web.yml", f"basic_auth_users:\n  alice: '{hash_password('pw')}'\n")
    watcher = WebConfigWatcher(path)
    path.unlink()
    assert not watcher.reload()
    assert "cannot read" in (watcher.last_error or "")
    assert watcher.current().config.auth_required
    assert watcher.check_basic_auth(basic("alice", "pw"))


def test_web_config_security_hooks(tmp_path: Path) -> None:
    path = write(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  alice: '{hash_password('pw')}'\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
    )
    security = WebConfigSecurity.from_file(path, open_paths={"/-/healthy", "/-/ready"})
    assert not security.tls_enabled
    assert security.extra_headers() == {"X-Content-Type-Options": "nosniff"}
    assert security.authorised("/-/healthy", None)
    assert security.authorised("/-/ready", None)
    assert not security.authorised("/metrics", None)
    assert not security.authorised("/", basic("alice", "nope"))
    assert security.authorised("/metrics", basic("alice", "pw"))
    assert security.allow_request()
    closed = WebConfigSecurity.from_file(path)
    assert not closed.authorised("/-/healthy", None)
    assert WebConfigSecurity.from_file(None).authorised("/metrics", None)


def test_web_config_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="junk"):
        WebConfigSecurity.from_file(write(tmp_path / "web.yml", "junk: 1\n"))
