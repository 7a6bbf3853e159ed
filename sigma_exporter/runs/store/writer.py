"""Writes what the poller changed, on its own thread, so that the poll loop never waits on the store.

Changes queued while a write is in flight (or while the store is down) are merged into one transaction;
nothing is dropped. A failed write is retried with back-off, and `up` says whether the last one worked.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from sigma_exporter.runs.store.records import Changes, StoreError, WriteResult

if TYPE_CHECKING:
    from sigma_exporter.runs.store import StateStore

log = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 4.0  # a store back again is written to within 5 s


class StateWriter:
    """Writes what the poller changed on a thread of its own. The poll thread calls `submit` and
    `take_results`; the registry `mark`s how its own writes went; anyone may read `up`; app.py calls `start`
    and `stop`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._cond = threading.Condition()
        self._pending = Changes()
        self._submitted = 0  # submissions so far; the pending changes hold every one up to it
        self._written = 0  # the submissions durable so far
        self._writing = False
        self._stop = False
        self._up = True
        self.failures_total = 0
        self.writes_total = 0
        self._results: list[WriteResult] = []  # identities the writes lost or refused, for the poll thread
        self._thread = threading.Thread(target=self._run, name="sigma-state-writer", daemon=True)

    def start(self) -> None:
        """Start the writing thread."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Write what is pending (waiting at most `timeout`), then end the thread."""
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def up(self) -> bool:
        """The last write (the writer's or a registration's) succeeded."""
        return self._up

    def mark(self, ok: bool) -> bool:
        """A write made elsewhere (a registration) tells how the store is doing, too. True when this
        changes it: the caller logs a failure once per outage, not once per refused request."""
        with self._cond:
            changed, self._up = self._up != ok, ok
        if changed and ok:
            log.info("state store writes work again", extra={"store": self.store.description})
            with self._cond:  # a registration got through: retry what waits now, not after the back-off
                self._cond.notify_all()
        return changed

    def submit(self, changes: Changes) -> int:
        """Queue changes for the next write (merged with what is pending); their number, which `written`
        reaches once they are durable."""
        with self._cond:
            if changes:
                self._submitted += 1
                self._pending = self._pending.merged(changes)
                self._cond.notify_all()
            return self._submitted

    def take_results(self) -> list[WriteResult]:
        """What the writes since the last call lost or refused of the identities they carried."""
        with self._cond:
            results, self._results = self._results, []
        return results

    @property
    def written(self) -> int:
        """The number of the latest submission that is durable: it and every one before it."""
        return self._written

    def wait_written(self, number: int, timeout: float) -> bool:
        """Wait until submission `number` is durable; False on timeout (a slow or failing store)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._written < number:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written; False on timeout (store down)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self) -> None:
        delay = RETRY_MIN_SECONDS
        while True:
            with self._cond:
                while not self._pending and not self._stop:
                    self._cond.wait()
                if self._stop and not self._pending:
                    return
                batch, self._pending = self._pending, Changes()
                number = self._submitted
                self._writing = True
            try:
                result = self.store.write(batch)
            except StoreError as exc:
                self.failures_total += 1
                if self.mark(False):
                    log.error("cannot write to the state store; retrying", extra={"error": str(exc)})
                with self._cond:
                    self._pending = batch.merged(self._pending)
                    self._writing = False
                    self._cond.notify_all()
                    if self._stop:
                        return
                    self._cond.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            except Exception:  # a bug: keep the changes, say so, and keep the thread alive
                log.exception("state store write failed unexpectedly")
                self._up = False
                with self._cond:
                    self._pending = batch.merged(self._pending)
                    self._writing = False
                    self._cond.notify_all()
                    self._cond.wait(RETRY_MAX_SECONDS)
                continue
            self.mark(True)
            self.writes_total += 1
            delay = RETRY_MIN_SECONDS
            with self._cond:
                if result.lost or result.refused or result.created:
                    self._results.append(replace(result, at=time.monotonic()))
                self._written = number
                self._writing = False
                self._cond.notify_all()
