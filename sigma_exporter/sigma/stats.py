"""Thread-safe statistics of Sigma API calls, frozen into immutable snapshots for the collector."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sigma_exporter.sigma.actions import POLLED_ACTIONS

#: Upper bounds (seconds) of the latency histogram buckets; +Inf is implied.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Histogram:
    """Non-cumulative bucket counts (the last one is +Inf), with the sum of observations."""

    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        """How many observations in all."""
        return sum(self.counts)


EMPTY_HISTOGRAM: Final = Histogram(counts=(0,) * (len(LATENCY_BUCKETS) + 1), total=0.0)


@dataclass(frozen=True)
class ApiStatsSnapshot:
    """The call statistics frozen at one moment, for a snapshot: latency histograms by action, requests by
    (action, code), errors by (action, reason)."""

    durations: Mapping[str, Histogram]
    requests: Mapping[tuple[str, str], int]  # (action, code) -> calls
    errors: Mapping[tuple[str, str], int]  # (action, reason) -> failed calls


class ApiStats:
    """Counts and times every call. `observe` is called from many poller threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, list[int]] = {a: [0] * (len(LATENCY_BUCKETS) + 1) for a in POLLED_ACTIONS}
        self._sums: dict[str, float] = dict.fromkeys(POLLED_ACTIONS, 0.0)
        self._requests: dict[tuple[str, str], int] = {}
        self._errors: dict[tuple[str, str], int] = {}

    def observe(self, action: str, code: str, seconds: float, error_reason: str | None) -> None:
        """Count one call (see `CallObserver.observe`). Any thread."""
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        with self._lock:
            buckets = self._buckets.setdefault(action, [0] * (len(LATENCY_BUCKETS) + 1))
            buckets[index] += 1
            self._sums[action] = self._sums.get(action, 0.0) + seconds
            self._requests[(action, code)] = self._requests.get((action, code), 0) + 1
            if error_reason is not None:
                key = (action, error_reason)
                self._errors[key] = self._errors.get(key, 0) + 1

    def freeze(self) -> ApiStatsSnapshot:
        """The statistics so far, as an immutable copy: by the poller for each snapshot it publishes, and once
        for the initial snapshot."""
        with self._lock:
            return ApiStatsSnapshot(
                durations={a: Histogram(tuple(b), self._sums[a]) for a, b in self._buckets.items()},
                requests=dict(self._requests),
                errors=dict(self._errors),
            )
