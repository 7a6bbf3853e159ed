"""Writes what the poller changed, on its own thread, so that the poll loop never waits on the store.

Changes queued while a write is in flight (or while the store is down) are merged into one transaction;
nothing is dropped. A failed write is retried with back-off, and `up` says whether the last one worked.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sigma_exporter.runs.store.records import Changes, StoreError

if TYPE_CHECKING:
    from sigma_exporter.runs.store import StateStore

log = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


class StateWriter:
    """Writes what the poller changed on a thread of its own. The poll thread calls `submit`; the registry
    `mark`s how its own writes went; anyone may read `up`; app.py calls `start` and `stop`."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._cond = threading.Condition()
        self._pending = Changes()
        self._writing = False
        self._stop = False
        self._up = True
        self.failures_total = 0
        self.writes_total = 0
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

    def mark(self, ok: bool) -> None:
        """A write made elsewhere (a registration) tells how the store is doing, too."""
        self._up = ok

    def submit(self, changes: Changes) -> None:
        """Queue changes for the next write (merged with what is pending)."""
        if not changes:
            return
        with self._cond:
            self._pending = self._pending.merged(changes)
            self._cond.notify_all()

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
                self._writing = True
            try:
                self.store.write(batch)
            except StoreError as exc:
                self.failures_total += 1
                if self._up:
                    log.error("cannot write to the state store; retrying", extra={"error": str(exc)})
                self._up = False
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
            if not self._up:
                log.info("state store writes work again", extra={"store": self.store.description})
            self._up = True
            self.writes_total += 1
            delay = RETRY_MIN_SECONDS
            with self._cond:
                self._writing = False
                self._cond.notify_all()
