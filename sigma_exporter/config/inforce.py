"""The configuration in force: swapped by the poll thread when it applies a reload, read by any thread."""

from __future__ import annotations

from sigma_exporter.config.model import Config


class ConfigInForce:
    """Holds the config in force. The poll thread calls `set` when it applies a reload; the scheduler, the
    API (for its token) and the reload endpoint call `get` from their own threads (an attribute read is
    atomic, so no lock)."""

    def __init__(self, config: Config) -> None:
        self._config = config

    def get(self) -> Config:
        """The config in force now."""
        return self._config

    def set(self, config: Config) -> None:
        """Put `config` in force (the poll thread, once it applied it)."""
        self._config = config
