"""`--web.config.file` (exporter-toolkit format), parsing: the toolkit's documented examples, files that
turn nothing on, invalid files each with a message naming the file and the key, Go durations.

Certificates come from the session's test PKI (tests/support/pki.py). Basic auth and SSL contexts:
test_webconfig_auth.py; reloads: test_webconfig_reload.py; a real loopback TLS server:
tests/integration/web/test_webconfig_serving.py.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from sigma_exporter.config.durations import parse_go_duration
from sigma_exporter.web.webconfig import (
    ALLOWED_HEADERS,
    RateLimitConfig,
    WebConfigError,
    build_ssl_context,
    load_web_config,
    parse_web_config,
    parse_web_config_text,
    validate_web_config_file,
)
from tests.support.pki import PKI, write

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
