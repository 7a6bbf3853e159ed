"""The link to the Sigma in force: one client, rebuilt when a reload changes `sigma:` or the pool size."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sigma_exporter.config.model import Config
from sigma_exporter.sigma.client import ExchangeHook, SigmaClient
from sigma_exporter.sigma.stats import ApiStats


class SigmaLink:
    """Holds the client every check and every scheduled start goes through. The poll thread calls `use`
    when it applies a config; checks (worker threads) and the scheduler call `client` and `start_run`;
    app.py calls `start` and `stop`. A client swapped out is closed: a call still running on it
    finishes on its connection, which is then closed."""

    def __init__(
        self,
        config: Config,
        stats: ApiStats,
        *,
        on_secret: Callable[[str], None] | None = None,
        on_exchange: ExchangeHook | None = None,
    ) -> None:
        self._config = config
        self._stats = stats
        self._on_secret = on_secret
        self._on_exchange = on_exchange
        self._client: SigmaClient | None = None

    def _build(self, config: Config) -> SigmaClient:
        return SigmaClient(
            config.sigma,
            self._stats,
            pool_size=config.poll.concurrency,
            on_secret=self._on_secret,
            on_exchange=self._on_exchange,
        )

    def start(self) -> None:
        """Build the client (its connections open on first use)."""
        if self._client is None:
            self._client = self._build(self._config)

    def stop(self, timeout: float) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()

    def use(self, config: Config) -> None:
        """Take a new config: a new client when its Sigma settings or pool size changed."""
        old = self._config
        self._config = config
        if self._client is not None and (
            config.sigma != old.sigma or config.poll.concurrency != old.poll.concurrency
        ):
            previous, self._client = self._client, self._build(config)
            previous.close()

    def client(self) -> SigmaClient:
        """The client in force (the link must have started)."""
        assert self._client is not None, "SigmaLink.start() was not called"
        return self._client

    def start_run(self, kind: str, ident: str, report_filter: Mapping[str, object] | None = None) -> str:
        """Start a run of the report or group `ident`; its reference. Raises SigmaError."""
        return self.client().start_run(kind, ident, report_filter)
