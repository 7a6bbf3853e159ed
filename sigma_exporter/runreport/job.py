"""`sigma-exporter run-report`: what a scheduler's job (Control-M, cron, Airflow) calls instead of the
vendor's sample script. Starts one run through Sigma, prints its reference number alone on stdout's first
line, optionally registers it with an exporter, and optionally follows it to a final status.

Exit codes (documented in --help and docs/api.md):
  0  started (and with --wait: ended in success or no data)
  1  with --wait: the run failed (FAILED, NOTIFICATION_FAILED, a failed group member) or Sigma lost it
  2  with --wait: no final status within --wait.timeout
  3  Sigma refused to start the run, or could not be reached (nothing was started, or it is unknown)
  4  the run started but registering it with the exporter failed (the reference is still printed;
     a --wait outcome of 1 or 2 takes precedence)
 64  usage: bad options, config or filter file (EX_USAGE; click's own usage errors are 2, so they are
     mapped, keeping 2 for a timeout only)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TextIO

from sigma_exporter.config.model import Config
from sigma_exporter.config.secret import Secret
from sigma_exporter.runreport.register import register, registration
from sigma_exporter.runs.outcomes import FAILURE, NO_DATA, SUCCESS, outcome_of_run
from sigma_exporter.sigma.client import SigmaClient
from sigma_exporter.sigma.errors import BadRequestError, SigmaError
from sigma_exporter.sigma.stats import ApiStats

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_TIMEOUT: Final = 2
EXIT_REFUSED: Final = 3
EXIT_NOT_REGISTERED: Final = 4
EXIT_USAGE: Final = 64
#: Between two status checks while waiting.
WAIT_INTERVAL_SECONDS: Final = 2.0
MAX_FILTER_BYTES: Final = 64 * 1024


class UsageError(Exception):
    """A bad option or file: exit 64 with this message."""


@dataclass(frozen=True)
class Request:
    """What `run-report` was asked: the report or group to start, its filter, where to register the run, and
    whether and how long to follow it."""

    kind: str  # report | group
    ident: str
    report_filter: Mapping[str, object] | None = None
    register_url: str | None = None
    api_token: Secret | None = None
    wait: bool = False
    wait_timeout: float = 3600.0
    wait_interval: float = WAIT_INTERVAL_SECONDS


def read_filter(path: str) -> dict[str, object]:
    """The JSON object of a --filter-file, passed to Sigma unchanged as reportFilter."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILTER_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the filter file: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILTER_BYTES:
        raise UsageError(f"{path}: the filter file is over {MAX_FILTER_BYTES // 1024} KiB")
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{path}: should hold a JSON object (sent as reportFilter), got {type(value).__name__}"
        )
    return value


def read_token(path: str) -> Secret:
    """The exporter's API token from a file, stripped; UsageError when it cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{path}: cannot read the API token file: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if not token:
        raise UsageError(f"{path}: the API token file is empty")
    return Secret(token)


def statuses(client: SigmaClient, kind: str, reference: str, timeout: float) -> tuple[str, ...]:
    """The statuses of the run: a report's one, or each member's of a group. Raises SigmaError."""
    if kind == "report":
        return (client.check_report(reference, timeout).report.status,)
    reply = client.check_group(reference, timeout)
    return tuple(r.status for r in reply.reports)


class Progress:
    """Progress on stderr: a line rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = ""

    def show(self, elapsed: float, text: str) -> None:
        """Show the progress `text` at `elapsed` seconds."""
        if self.tty:
            self.stream.write(f"\r\033[K[{elapsed:6.0f}s] {text}")
            self.stream.flush()
        elif text != self._last:
            self.stream.write(f"[{elapsed:.0f}s] {text}\n")
            self.stream.flush()
        self._last = text

    def done(self) -> None:
        """End the rewritten line on a terminal, so the next message starts on its own."""
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def follow(client: SigmaClient, request: Request, reference: str, err: TextIO) -> int:
    """Check the run until it is final or the wait times out; the exit code."""
    progress = Progress(err)
    started = time.monotonic()
    deadline = started + request.wait_timeout
    while True:
        elapsed = time.monotonic() - started
        try:
            seen = statuses(client, request.kind, reference, max(0.1, min(10.0, deadline - time.monotonic())))
        except BadRequestError as exc:
            progress.done()
            err.write(f"error: Sigma no longer knows the run {reference}: {exc}\n")
            return EXIT_FAILED
        except SigmaError as exc:  # transient: keep trying until the deadline
            progress.show(elapsed, f"status check failed ({exc.reason}); retrying")
        else:
            progress.show(elapsed, ", ".join(seen) or "no status yet")
            outcome = outcome_of_run(seen)
            if outcome is not None:
                progress.done()
                err.write(f"{reference}: {outcome} ({', '.join(seen)}) after {elapsed:.0f}s\n")
                return EXIT_OK if outcome in (SUCCESS, NO_DATA) else EXIT_FAILED
        if time.monotonic() + request.wait_interval > deadline:
            progress.done()
            err.write(f"error: {reference}: no final status within {request.wait_timeout:g}s\n")
            return EXIT_TIMEOUT
        time.sleep(request.wait_interval)


def run_report(
    config: Config,
    request: Request,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    on_secret: Callable[[str], None] | None = None,
) -> int:
    """Start the run, print its reference on `out`, register it and follow it as `request` asks; the exit code
    (see the module's table). Messages go to `err`."""
    client = SigmaClient(config.sigma, ApiStats(), pool_size=1, on_secret=on_secret)
    try:
        submitted = time.time()
        try:
            reference = client.start_run(request.kind, request.ident, request.report_filter)
        except SigmaError as exc:
            err.write(f"error: Sigma did not start the {request.kind} {request.ident}: {exc}\n")
            return EXIT_REFUSED
        out.write(reference + "\n")
        out.flush()
        code = EXIT_OK
        if request.register_url:
            body = registration(request.kind, request.ident, reference, submitted)
            problem = register(request.register_url, request.api_token, body, config.sigma.timeout_seconds)
            if problem is not None:
                err.write(f"error: the run {reference} started but was not registered: {problem}\n")
                code = EXIT_NOT_REGISTERED
        if request.wait:
            waited = follow(client, request, reference, err)
            if waited != EXIT_OK:
                return waited
        return code
    finally:
        client.close()


__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_REGISTERED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "FAILURE",
    "Request",
    "UsageError",
    "read_filter",
    "read_token",
    "run_report",
]
