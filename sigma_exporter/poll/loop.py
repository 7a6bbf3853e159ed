"""The poll thread: a full cycle every interval, and between them a cycle as soon as a run is due, an
expectation's verdict may change, a reload or a burst of registrations arrives."""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from sigma_exporter.poll.poller import Poller

log = logging.getLogger(__name__)

#: After a registration wakes the loop, it waits this long for more before checking (first check < 1 s).
GATHER_SECONDS: Final = 0.2


class PollLoop:
    """Runs the poller's cycles on a thread of its own. `wake` is set by whoever has news for the poll thread
    (the registry, the scheduler, the reload inbox); app.py calls `start` and `stop`."""

    def __init__(self, poller: Poller, wake: threading.Event) -> None:
        self._poller = poller
        self._wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sigma-poller", daemon=True)

    def start(self) -> None:
        """Start the poll thread: its first cycle is a full one, at once."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """End the poll thread, waiting at most `timeout` for a cycle in flight (whose calls are abandoned)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        poller = self._poller
        last_full = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            full = started - last_full >= poller.config.poll.interval_seconds
            try:
                poller.run_cycle(due_only=not full)
            except Exception:  # the loop must survive anything, and say so
                log.exception("poll cycle failed unexpectedly")
            if full:
                last_full = started
            if self._idle(last_full):
                last_full = 0.0  # a new config: check its references now

    def _idle(self, last_full: float) -> bool:
        """Sleep until a cycle is due, or news arrives; True when a new config came."""
        poller = self._poller
        while not self._stop.is_set():
            wait = poller.seconds_to_wait(time.monotonic() - last_full)
            if wait <= 0 or not self._wake.wait(wait):
                return False
            self._wake.clear()
            if self._stop.is_set():
                return False
            if poller.apply_pending():
                return True
            if poller.take_arrivals():
                self._stop.wait(GATHER_SECONDS)  # let a burst of registrations arrive together
                poller.take_arrivals()
                return False
        return False
