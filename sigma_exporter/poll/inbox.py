"""The reload inbox: a reload is asked for on another thread (/-/reload, SIGHUP) and taken by the poll
thread, which alone applies a config."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sigma_exporter.config.load import Config, ConfigError
from sigma_exporter.runs.references import ReferenceFiles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reload:
    """A reload's outcome: what went wrong ("" when it loaded) and when it was tried."""

    error: str
    at: float

    @property
    def ok(self) -> bool:
        """The config loaded."""
        return not self.error


class ReloadInbox:
    """Holds the latest reload until the poll thread takes it. `load` and `wait_applied` are for any
    thread; `take` and `done` for the poll thread only. Every reload sets `wake`."""

    def __init__(self, wake: threading.Event, clock: Callable[[], float] = time.time) -> None:
        self._wake = wake
        self._clock = clock
        self._lock = threading.Lock()
        self._config: Config | None = None
        self._outcome: Reload | None = None
        self._applied = threading.Event()
        self._applied.set()

    def load(self, load: Callable[[], Config]) -> tuple[bool, str]:
        """Load a new config (and its reference files) now, on the caller's thread. A good one is queued for
        the poll thread; a bad one leaves the old one in force. Either way the outcome is queued too, so
        that the poll thread publishes it. Returns (loaded, error)."""
        at = self._clock()
        try:
            config = load()
            ReferenceFiles(config.references.files).refresh(strict=True)
        except ConfigError as exc:
            log.error("configuration reload failed; keeping the last good one", extra={"error": str(exc)})
            self._queue(None, str(exc), at)
            return False, str(exc)
        log.info("configuration reloaded", extra={"file": config.source})
        self._queue(config, "", at)
        return True, ""

    def _queue(self, config: Config | None, error: str, at: float) -> None:
        with self._lock:
            if config is not None:  # a failed reload leaves a good one queued before it in place
                self._config = config
            self._outcome = Reload(error, at)
            self._applied.clear()
        self._wake.set()

    def take(self) -> tuple[Config | None, Reload | None]:
        """The config queued since the last call (None if none) and the latest outcome (None if none)."""
        with self._lock:
            config, self._config = self._config, None
            outcome, self._outcome = self._outcome, None
        return config, outcome

    def done(self) -> None:
        """The poll thread took and published what `take` gave."""
        self._applied.set()

    def wait_applied(self, timeout: float) -> bool:
        """Wait until the poll thread has taken the last reload (True) or `timeout` passed."""
        return self._applied.wait(timeout)
