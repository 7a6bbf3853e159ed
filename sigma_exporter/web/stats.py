"""What the HTTP server saw (connections, rejected requests, TLS handshakes) and the web config watcher's
state, as metric families for the exposition's live part (rendered at most once a second)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sigma_exporter.web.webconfig import WebConfigWatcher

#: Why the server turned a request or a connection away: the `reason` label.
MALFORMED: Final = "malformed"  # 400: a request line, header or body framing that is not HTTP/1.x
VERSION: Final = "http_version"  # 505
TOO_LARGE: Final = "too_large"  # 413: a body over the limit
READ_TIMEOUT: Final = "read_timeout"  # a request not complete within --web.read-timeout: closed
CONNECTION_LIMIT: Final = "connection_limit"  # over --web.max-connections: closed at once
TLS_HANDSHAKE: Final = "tls_handshake"  # plain HTTP on the TLS port, no or a refused client certificate
UNAUTHORIZED: Final = "unauthorized"  # 401
RATE_LIMITED: Final = "rate_limited"  # 429
STORE_UNREADABLE: Final = "store_unreadable"  # 503: a report's history, and the state store cannot be read
REASONS: Final = (
    MALFORMED,
    VERSION,
    TOO_LARGE,
    READ_TIMEOUT,
    CONNECTION_LIMIT,
    TLS_HANDSHAKE,
    UNAUTHORIZED,
    RATE_LIMITED,
    STORE_UNREADABLE,
)


@dataclass
class ServerStats:
    """Counters of the server; written on the server's event loop thread only."""

    open_connections: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def reject(self, reason: str) -> None:
        """Count a request or connection turned away for `reason` (one of `REASONS`)."""
        self.rejected[reason] += 1

    @property
    def tls_handshake_failures(self) -> int:
        """TLS handshakes that failed or were refused, so far."""
        return self.rejected[TLS_HANDSHAKE]


class WebCollector:
    """A prometheus_client collector over `ServerStats` and the web config watcher, collected on the
    server's event loop (where the stats are written) while a scrape renders the process part."""

    def __init__(self, stats: ServerStats, watcher: WebConfigWatcher | None) -> None:
        self.stats = stats
        self.watcher = watcher

    def collect(self) -> Iterator[Metric]:
        """The server's counters and the web config's reload state, as metric families. Called while the
        process part renders (on the event loop, for a scrape)."""
        connections = GaugeMetricFamily(
            "sigma_web_connections", "HTTP connections open to the exporter's server."
        )
        connections.add_metric([], self.stats.open_connections)
        yield connections
        rejected = CounterMetricFamily(
            "sigma_web_requests_rejected",
            "Requests and connections the exporter's server turned away, by reason.",
            labels=["reason"],
        )
        for reason in REASONS:
            rejected.add_metric([reason], self.stats.rejected[reason])
        yield rejected
        watcher = self.watcher
        if watcher is None or watcher.path is None:
            return
        ok = GaugeMetricFamily(
            "sigma_web_config_last_reload_successful",
            "1 when the web config file (and the TLS files it names) in force is the one on disk.",
        )
        ok.add_metric([], 1.0 if watcher.last_reload_ok else 0.0)
        yield ok
        when = GaugeMetricFamily(
            "sigma_web_config_last_reload_success_timestamp_seconds",
            "When the web config was last loaded successfully.",
        )
        when.add_metric([], watcher.last_reload_time)
        yield when
        failures = CounterMetricFamily(
            "sigma_web_config_reload_failures", "Changes of the web config that could not be applied."
        )
        failures.add_metric([], watcher.reload_failures_total)
        yield failures
        auth = watcher.authenticator
        checks = CounterMetricFamily(
            "sigma_web_basic_auth_checks",
            "Basic-auth passwords checked: with bcrypt (cache=miss) or from the cache of successes (hit).",
            labels=["cache"],
        )
        checks.add_metric(["miss"], auth.bcrypt_checks)
        checks.add_metric(["hit"], auth.cache_hits)
        yield checks
