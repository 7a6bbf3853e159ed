"""The one place a published snapshot lives: swapped atomically, read without locks by scrapes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sigma_exporter.metrics.exposition import Rendered, render
from sigma_exporter.metrics.snapshot import Snapshot


@dataclass(frozen=True)
class Published:
    """A snapshot and its exposition, rendered once; swapped as one so that a scrape never pairs one snapshot
    with another's bytes."""

    snapshot: Snapshot
    rendered: Rendered


class LatestSnapshot:
    """Holds the snapshot in force. The poller publishes (the poll thread; app.py at start through
    `Poller.start`); any thread reads `current` without a lock: scrapes and the status page on the web
    server's event loop, the API's handlers, the scheduler."""

    def __init__(self, initial: Snapshot) -> None:
        self._publish_lock = threading.Lock()
        self._current = Published(initial, render(initial))

    def current(self) -> Published:
        """The snapshot in force with its exposition; any thread, never blocks."""
        return self._current  # a single reference read: atomic

    def publish(self, make: Callable[[Snapshot], Snapshot]) -> Snapshot:
        """Build the next snapshot from the current one, render it, swap. Publishers are serialised, so a
        config reload and a poll cycle publishing at once cannot undo each other."""
        with self._publish_lock:
            snapshot = make(self._current.snapshot)
            self._current = Published(snapshot, render(snapshot))
            return snapshot
