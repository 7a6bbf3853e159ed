"""Checking one run, or probing Sigma when no run is held: through the link in force, never raising."""

from __future__ import annotations

import logging
from typing import Final

from sigma_exporter.config.model import Reference
from sigma_exporter.runs.clock import Clock
from sigma_exporter.runs.held import Observation
from sigma_exporter.sigma.errors import BadRequestError, FailureReplyError, SigmaError
from sigma_exporter.sigma.link import SigmaLink
from sigma_exporter.sigma.replies import GroupReply, ReportReply

log = logging.getLogger(__name__)

#: Reference number used to probe reachability and authentication when nothing else is watched.
PROBE_REFERENCE: Final = "sigma-exporter-probe"


class Checker:
    """Turns a status call into an `Observation`: a bug is logged and becomes a failed check, so that
    neither a worker thread nor stale series outlive it. `check` runs on the worker threads, `probe` on the
    poll thread."""

    def __init__(self, link: SigmaLink, clock: Clock) -> None:
        self._link = link
        self._clock = clock

    def check(self, ref: Reference, budget: float) -> Observation:
        """One status call for the run `ref`, within `budget` seconds."""
        checked_at, mono = self._clock.time(), self._clock.monotonic()
        client = self._link.client()
        try:
            if ref.kind == "group":
                reply: ReportReply | GroupReply = client.check_group(ref.reference, timeout=budget)
            else:
                reply = client.check_report(ref.reference, timeout=budget)
        except SigmaError as exc:
            reached = isinstance(exc, (BadRequestError, FailureReplyError))
            return Observation(ref, None, exc, checked_at, reached, mono)
        except Exception as exc:  # a bug, not Sigma
            log.exception("check failed unexpectedly", extra={"reference": ref.reference, "kind": ref.kind})
            failed = SigmaError(f"unexpected {type(exc).__name__}")
            return Observation(ref, None, failed, checked_at, False, mono)
        return Observation(ref, reply, None, checked_at, True, mono)

    def probe(self, budget: float) -> bool:
        """Whether Sigma is reachable and takes our credentials, when no run is held to check."""
        try:
            self._link.client().probe(PROBE_REFERENCE, timeout=budget)
        except FailureReplyError:
            return True  # Sigma answered, with a FAILURE body
        except SigmaError:
            return False
        except Exception:  # a bug, not Sigma
            log.exception("probe failed unexpectedly")
            return False
        return True
