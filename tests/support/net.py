"""Loopback plumbing: a free port on 127.0.0.1 and a bounded wait. Shared with benchmarks/."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import requests


class WaitTimeout(AssertionError):
    """`wait_for` ran out of time: a failed assertion in a test, a failed run in a benchmark."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll `condition` every `interval` seconds until it returns something truthy, and return that.

    A `requests.RequestException` or `OSError` from `condition` counts as "not yet" (a server still
    starting); any other exception propagates at once. After `timeout` seconds: `WaitTimeout` (an
    AssertionError) naming `what` and the last value or error seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise WaitTimeout(f"timed out after {timeout}s waiting for {what or condition}: last {last!r}")
