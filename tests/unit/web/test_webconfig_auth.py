"""`--web.config.file` without a server: bcrypt basic auth (cache, decoy for unknown users, Go's
compatibility), the rate limiter's token bucket, and the SSL contexts built from tls_server_config."""

from __future__ import annotations

import base64
import ssl
import time
from pathlib import Path

import pytest

from sigma_exporter.web.webconfig import (
    BasicAuthenticator,
    RateLimitConfig,
    RateLimiter,
    TLSServerConfig,
    WebConfig,
    WebConfigError,
    bcrypt_cost,
    build_ssl_context,
    client_sans_allowed,
    parse_basic_authorization,
    parse_web_config,
)
from tests.support.pki import PKI, issue, write
from tests.support.webconfig import basic, hash_password


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
