"""Due times: when a run is next checked (`next_check`, pure), and the queue that finds the due runs,
earliest first, without sweeping the whole list."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

from sigma_exporter.config.model import RETAINED_SOURCES, PollConfig
from sigma_exporter.runs.held import HeldRun

K = TypeVar("K", bound=Hashable)


def next_check(run: HeldRun, poll: PollConfig, checked_at: float) -> float | None:
    """When a run checked at `checked_at` is due again, None for never (the re-check rule of design.md):

    - a run that is not final (or whose last check failed): after the interval;
    - `final_recheck_seconds: 0`: every full cycle (after the interval), as any other run;
    - `final_recheck: fixed`: every `final_recheck_seconds` (never sooner than the interval), forever;
    - `decay`: the first re-check after `final_recheck_seconds`, each later one twice as long after the one
      before; an end (FAILED, NOTIFIED, NO_DATA_AVAILABLE, NOTIFICATION_FAILED; a group all of whose members
      are in one) of an api or schedule run is confirmed once and then left alone; config and file
      references wait at most `final_recheck_max_seconds` and are never left alone.
    """
    interval = poll.interval_seconds
    first = poll.final_recheck_seconds
    if not run.final or first <= 0:
        return checked_at + interval
    if poll.final_recheck == "fixed":
        return checked_at + max(first, interval)
    retained = run.ref.source in RETAINED_SOURCES
    if retained and run.ended and run.rechecks >= 1:
        return None
    step = first * 2.0 ** min(run.rechecks, 32)
    if not retained:
        step = min(step, max(first, poll.final_recheck_max_seconds))
    return checked_at + max(step, interval)


class DueQueue(Generic[K]):
    """A heap of (due time, key) with lazy removal: `set` replaces a key's due time, `remove` forgets it.
    The poll thread's."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def set(self, key: K, due: float) -> None:
        """Make `key` due at `due` (replacing its earlier due time)."""
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        if len(self._heap) > 4 * len(self._due) + 64:  # many stale entries: rebuild
            self._heap = [(d, next(self._order), k) for k, d in self._due.items()]
            heapq.heapify(self._heap)

    def remove(self, key: K) -> None:
        """Forget `key`."""
        self._due.pop(key, None)

    def next_due(self) -> float | None:
        """The earliest due time, None when the queue is empty."""
        while self._heap:
            due, _, key = self._heap[0]
            if self._due.get(key) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Every key due at `now`, earliest first; they leave the queue until `set` again."""
        keys: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._due.get(key) == due:
                del self._due[key]
                keys.append(key)
        return keys
