"""A fixed set of daemon worker threads that run one batch of checks at a time, until a deadline.

Daemon threads (not concurrent.futures) so that a shutdown never waits for calls still in flight.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchResult(Generic[R]):
    """What one batch came to: the results of the checks that ran, and how many were skipped (not started
    before the deadline) or abandoned (started, not finished within the grace)."""

    def __init__(self) -> None:
        self.results: list[R] = []
        self.skipped = 0
        self.abandoned = 0


class WorkerPool:
    """`size` daemon threads that run the poll thread's batches. The poll thread calls `run` and `resize`;
    app.py calls `start` and `stop`."""

    def __init__(self, size: int, name: str = "sigma-check") -> None:
        self.size = size
        self._name = name
        self._tasks: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._spawned = 0

    def start(self) -> None:
        """Start the threads."""
        self._spawn(self.size)

    def stop(self, timeout: float) -> None:
        """Let every thread end once its current call returns (a call in flight is not waited for)."""
        for _ in range(self.size):
            self._tasks.put(None)
        self.size = 0

    def resize(self, size: int) -> None:
        """Grow or shrink to `size` threads (a reload changed poll.concurrency)."""
        if size > self.size:
            self._spawn(size - self.size)
        for _ in range(self.size - size):
            self._tasks.put(None)
        self.size = size

    def _spawn(self, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._work, name=f"{self._name}-{self._spawned}", daemon=True)
            self._spawned += 1
            thread.start()

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            task()

    def run(
        self,
        items: Sequence[T],
        check: Callable[[T, float], R],
        deadline: float,
        *,
        min_budget: float = 0.05,
        grace: float = 1.0,
    ) -> BatchResult[R]:
        """Run `check(item, seconds_left)` over items with at most `size` in flight. Items not started
        while at least `min_budget` seconds were left are counted as skipped."""
        batch: BatchResult[R] = BatchResult()
        lock = threading.Lock()
        cursor = iter(items)
        remaining = [len(items)]
        finished = threading.Semaphore(0)

        def drain() -> None:
            try:
                while True:
                    with lock:
                        item = next(cursor, None)
                        if item is None:
                            return
                        remaining[0] -= 1
                        left = deadline - time.monotonic()
                        if left < min_budget:
                            batch.skipped += 1 + remaining[0]
                            remaining[0] = 0
                            for _ in cursor:
                                pass
                            return
                    result = check(item, left)
                    with lock:
                        batch.results.append(result)
            finally:
                finished.release()

        workers = min(self.size, max(len(items), 1))
        for _ in range(workers):
            self._tasks.put(drain)
        wait_until = deadline + grace
        for _ in range(workers):
            if not finished.acquire(timeout=max(wait_until - time.monotonic(), 0.0)):
                with lock:
                    batch.abandoned = len(items) - len(batch.results) - batch.skipped
                    return _copy(batch)
        return batch


def _copy(batch: BatchResult[R]) -> BatchResult[R]:
    """A detached copy: late workers of an abandoned batch keep appending to the original only."""
    copy: BatchResult[R] = BatchResult()
    copy.results = list(batch.results)
    copy.skipped = batch.skipped
    copy.abandoned = batch.abandoned
    return copy
