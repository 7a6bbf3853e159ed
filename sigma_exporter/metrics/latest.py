"""The one place a published snapshot lives: swapped atomically, read without locks by scrapes."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sigma_exporter.metrics.render import Exposition, Rendered
from sigma_exporter.metrics.snapshot import ReferenceState, Snapshot


@dataclass(frozen=True)
class Published:
    """A snapshot and its exposition, rendered by change; swapped as one so that a scrape never pairs one snapshot
    with another's bytes."""

    snapshot: Snapshot
    rendered: Rendered

    @functools.cached_property
    def by_reference(self) -> dict[str, ReferenceState]:
        """The snapshot's runs by reference, made on first use (once per snapshot, not per request)."""
        return {state.ref.reference: state for state in self.snapshot.references}


class LatestSnapshot:
    """Holds the snapshot in force. The poller publishes (the poll thread; app.py at start through
    `Poller.start`); any thread reads `current` without a lock: scrapes and the status page on the web
    server's event loop, the API's handlers, the scheduler."""

    def __init__(self, initial: Snapshot) -> None:
        self._publish_lock = threading.Lock()
        self.exposition = Exposition()  # the publisher's: behind the lock
        self._current = Published(initial, self.exposition.render(initial))

    def current(self) -> Published:
        """The snapshot in force with its exposition; any thread, never blocks."""
        return self._current  # a single reference read: atomic

    def publish(self, make: Callable[[Snapshot], Snapshot]) -> Snapshot:
        """Build the next snapshot from the current one, render it, swap. Publishers are serialised, so a
        config reload and a poll cycle publishing at once cannot undo each other."""
        with self._publish_lock:
            snapshot = make(self._current.snapshot)
            self._current = Published(snapshot, self.exposition.render(snapshot))
            return snapshot
