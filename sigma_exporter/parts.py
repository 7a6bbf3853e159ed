"""Parts and their order: a part owns a thread, a socket or a connection; `Parts` starts a list of them in
order and stops the started ones in reverse within a deadline. app.py builds the lists (the composition
root); nothing else starts or stops a part. Imports nothing of the exporter."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Final, Protocol

log = logging.getLogger(__name__)

#: How long a stop may take in all (SIGTERM: the container is gone within 2 s).
SHUTDOWN_SECONDS: Final = 2.0


class Part(Protocol):
    """Something that owns a thread, a socket or a connection. Only app.py calls these."""

    def start(self) -> object:
        """Bring it up, or raise; the parts before it are up."""

    def stop(self, timeout: float) -> None:
        """Let it go within `timeout` seconds; the parts after it are down."""


class Parts:
    """Parts in start order: `start` starts them in order (when one fails, those started are stopped in
    reverse and the error raised); `stop` stops the started ones in reverse, each with a fair share of what
    is left of the time."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self._parts = tuple(parts)
        self._started: list[Part] = []

    def start(self) -> None:
        """Start every part in order."""
        for part in self._parts:
            try:
                part.start()
            except BaseException:
                self.stop(SHUTDOWN_SECONDS)
                raise
            self._started.append(part)

    def stop(self, timeout: float) -> None:
        """Stop the started parts in reverse order within `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        while self._started:
            part = self._started.pop()
            share = max(0.0, deadline - time.monotonic()) / (len(self._started) + 1)
            try:
                part.stop(share)
            except Exception:  # one part failing to stop must not keep the others up
                log.exception("a part failed to stop", extra={"part": type(part).__name__})


@contextlib.contextmanager
def running(parts: Sequence[Part], timeout: float = SHUTDOWN_SECONDS) -> Iterator[None]:
    """The parts started for the block, stopped after it whatever happens."""
    started = Parts(parts)
    started.start()
    try:
        yield
    finally:
        started.stop(timeout)
