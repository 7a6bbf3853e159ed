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

Layout: `model.py` (the typed config and the toolkit's vocabulary), `parse.py` (pure: a YAML document in,
a `WebConfig` or a `WebConfigError` out, on the shared config walker), `tls.py` (a `TLSServerConfig` to an
`ssl.SSLContext`, client SAN checks), `auth.py` (basic auth and the rate limiter), `watcher.py` (re-reads the
file and its certificate files when they change; per-request checks for the server). The server itself
(`web/server.py`) takes the watcher's current SSL context for each TLS handshake.

May import: `config/` (the walker). Imported by `web/` and `app.py`.
"""

from sigma_exporter.web.webconfig.auth import BasicAuthenticator, RateLimiter, parse_basic_authorization
from sigma_exporter.web.webconfig.model import (
    ALLOWED_HEADERS,
    RateLimitConfig,
    TLSServerConfig,
    WebConfig,
    WebConfigError,
)
from sigma_exporter.web.webconfig.parse import (
    bcrypt_cost,
    load_web_config,
    parse_web_config,
    parse_web_config_text,
)
from sigma_exporter.web.webconfig.tls import build_ssl_context, client_sans_allowed, validate_web_config_file
from sigma_exporter.web.webconfig.watcher import ActiveWebConfig, WebConfigSecurity, WebConfigWatcher

__all__ = [
    "ALLOWED_HEADERS",
    "ActiveWebConfig",
    "BasicAuthenticator",
    "RateLimitConfig",
    "RateLimiter",
    "TLSServerConfig",
    "WebConfig",
    "WebConfigError",
    "WebConfigSecurity",
    "WebConfigWatcher",
    "bcrypt_cost",
    "build_ssl_context",
    "client_sans_allowed",
    "load_web_config",
    "parse_basic_authorization",
    "parse_web_config",
    "parse_web_config_text",
    "validate_web_config_file",
]
