"""Group commit: concurrent writers share one transaction, and so one sync to disk.

The first caller to find no commit in flight leads: it takes every item queued so far and commits them
together, while the callers that arrive meanwhile queue up for the next batch, which the first of them
leads. A lone caller commits alone at once, so this adds no latency when there is no contention; with eight
clients it turns eight syncs into one or two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Entry(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "lead", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.done = threading.Event()
        self.lead = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Concurrent callers share one transaction (the SQL stores' registrations). Any thread may call
    `submit`."""

    def __init__(self, commit: Callable[[Sequence[Item]], Sequence[Result]]) -> None:
        """`commit` writes a batch in one transaction and returns a result per item, in order; when it
        raises, every caller of the batch gets that exception."""
        self._commit = commit
        self._lock = threading.Lock()
        self._queue: list[_Entry[Item, Result]] = []
        self._leading = False
        self.batches_total = 0
        self.items_total = 0

    def submit(self, item: Item) -> Result:
        """Commit `item`, in a batch with whatever arrives meanwhile; its result, once the batch is durable.
        Raises what the batch's commit raised. Any thread; blocks until committed."""
        entry: _Entry[Item, Result] = _Entry(item)
        with self._lock:
            self._queue.append(entry)
            entry.lead = not self._leading
            self._leading = True
        if not entry.lead:
            entry.done.wait()
        if entry.lead:
            self._lead()
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            results = self._commit([entry.item for entry in batch])
            for entry, result in zip(batch, results, strict=True):
                entry.result = result
        except BaseException as exc:  # handed to every caller of the batch, each re-raises it
            for entry in batch:
                entry.error = exc
        with self._lock:
            self.batches_total += 1
            self.items_total += len(batch)
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].done.set()
            else:
                self._leading = False
        for entry in batch:
            entry.lead = False
            entry.done.set()
