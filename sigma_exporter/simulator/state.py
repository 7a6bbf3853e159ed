"""The simulator's shared state (runs, tokens, call counts, faults) and the reply bodies it produces."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final

from sigma_exporter.sigma.actions import GENERATE_TOKEN
from sigma_exporter.simulator.scenario import (
    Faults,
    ReportSpec,
    RunSpec,
    Scenario,
    status_at,
    wire_status,
)

log = logging.getLogger(__name__)

API_PREFIX: Final = "/sigma/rest/reports"
SUCCESS_STATUSES: Final = frozenset({"PUBLISHED", "NOTIFIED"})
FAILURE_STATUSES: Final = frozenset({"FAILED", "NOTIFICATION_FAILED"})


@dataclass
class Run:
    """A run the simulator answers for: its spec, when it started (monotonic), and statuses pinned by tests,
    per report id ("" for all)."""

    spec: RunSpec
    started: float
    overrides: dict[str, str] = field(default_factory=dict)  # report_id ("" = all) -> status


@dataclass
class Token:
    """An access token handed out: when it expires (monotonic; None: never) and the calls it has left (None:
    no limit)."""

    expires: float | None
    calls_left: int | None


class SimulatorState:
    """Everything the handlers share, behind one lock."""

    def __init__(self, scenario: Scenario) -> None:
        self.lock = threading.Lock()
        self.scenario = scenario
        self.faults = scenario.faults
        now = time.monotonic()
        self.runs: dict[str, Run] = {spec.reference: Run(spec, now) for spec in scenario.runs}
        self.tokens: dict[str, Token] = {t: Token(None, None) for t in scenario.credentials.tokens}
        self.random = random.Random(scenario.seed)  # noqa: S311 - fault dice, not crypto
        self.calls: Counter[str] = Counter()
        self.by_reference: Counter[str] = Counter()
        self.param_sources: Counter[str] = Counter()
        #: Request targets (path and query string) of the latest API calls, for tests to inspect.
        self.request_targets: deque[str] = deque(maxlen=2000)
        self.in_flight = 0
        self.max_in_flight = 0
        #: How many calls each `faults.generate_faults` rule (by index) has taken.
        self.generate_fault_uses: dict[int, int] = {}
        #: The `reportFilter` each started run was sent with (as received: JSON text), for tests.
        self.filters: dict[str, str | None] = {}
        #: Set while the server stops: a `timeout` fault's wait ends at once.
        self.closing = threading.Event()

    def started_filter(self, reference: str) -> object:
        """The reportFilter the run `reference` was started with, parsed; None when none was sent."""
        with self.lock:
            text = self.filters.get(reference)
        return None if text is None else json.loads(text)

    def change_faults(self, changes: dict[str, object], reset: bool = False) -> None:
        """Merge `changes` into the faults (into the defaults when `reset`). New `generate_faults` rules,
        or a reset, count their calls from zero."""
        with self.lock:
            self.faults = (Faults() if reset else self.faults).merged(changes)
            if reset or "generate_faults" in changes:
                self.generate_fault_uses.clear()

    def stats(self, brief: bool = False) -> dict[str, object]:
        """Call statistics; `brief` leaves out the per-reference counts (cheap to ask for often)."""
        with self.lock:
            return {
                "calls": dict(self.calls),
                **({} if brief else {"by_reference": dict(self.by_reference)}),
                "param_sources": dict(self.param_sources),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "tokens_issued": self.calls[GENERATE_TOKEN],
                "runs": len(self.runs),
            }

    def reset_stats(self) -> None:
        """Count calls from zero again (the in-flight peak from those in flight now)."""
        with self.lock:
            self.calls.clear()
            self.by_reference.clear()
            self.param_sources.clear()
            self.max_in_flight = self.in_flight

    def set_status(self, reference: str, status: str, report_id: str = "") -> None:
        """Pin the status of run `reference` (of one member with `report_id`); `TIMELINE` unpins it. KeyError
        for an unknown run."""
        with self.lock:
            run = self.runs.get(reference)
            if run is None:
                raise KeyError(f"no run {reference}")
            status = status.upper()
            if status == "TIMELINE":
                run.overrides.pop(report_id, None)
            else:
                run.overrides[report_id] = status

    def add_runs(self, runs: list[RunSpec]) -> None:
        """Make more runs known, started now (a known reference starts over)."""
        now = time.monotonic()
        with self.lock:
            for spec in runs:
                self.runs[spec.reference] = Run(spec, now)

    def chance(self, rate: float) -> bool:
        """Roll the scenario's seeded dice: True with probability `rate`."""
        if rate <= 0:
            return False
        with self.lock:
            return self.random.random() < rate


def _status_of(run: Run, spec: ReportSpec, now: float) -> str:
    override = run.overrides.get(spec.report_id, run.overrides.get(""))
    return override if override is not None else status_at(spec, now - run.started)


def report_body(run: Run, now: float) -> dict[str, object] | None:
    """The headerMap of an individual run, or None while it has no status yet."""
    spec = run.spec.reports[0]
    status = _status_of(run, spec, now)
    if status == "PENDING":
        return None
    failed = status in FAILURE_STATUSES
    return {
        "replyType": "SUCCESS",
        "reportId": f" {spec.report_id}",
        "reportName": f" {spec.report_name} ",
        "success": "true",
        "reportStatus": wire_status(status),
        "errorCode": spec.error_code if failed else "",
        "statusCode": "200",
        "errorMsg": spec.error_msg if failed else "",
    }


def group_body(run: Run, now: float) -> dict[str, object] | None:
    """The headerMap of a group run, or None while it (or every member) has no status yet."""
    if now - run.started < run.spec.pending_seconds:
        return None
    statuses = [_status_of(run, spec, now) for spec in run.spec.reports]
    if statuses and all(s == "PENDING" for s in statuses):
        return None
    group_id = run.spec.report_group_id
    members = [
        {
            "reportId": spec.report_id,
            "reportName": f" {spec.report_name} ",
            "reportTitle": "",
            "reportStatus": wire_status(status),
            "errorCode": spec.error_code if status in FAILURE_STATUSES else "",
            "reportGroupId": f" {group_id} ",
            "errorMsg": spec.error_msg if status in FAILURE_STATUSES else "",
        }
        for spec, status in zip(run.spec.reports, statuses, strict=True)
    ]
    return {
        "reportFailureCount": str(sum(s in FAILURE_STATUSES for s in statuses)),
        "reports": members,
        "replyType": "SUCCESS",
        "reportSuccessCount": str(sum(s in SUCCESS_STATUSES for s in statuses)),
        "referenceNumber": run.spec.reference,
        "success": "true",
        "reportGroupId": f" {group_id} ",
        "noOfReports": str(len(members)),
        "statusCode": "200",
    }


def failure(status: int, code: str, message: str) -> dict[str, object]:
    """A FAILURE reply with Sigma's `statusCode`, `errorCode` and `errorMsg`."""
    return {
        "headerMap": {
            "replyType": "FAILURE",
            "success": "false",
            "statusCode": str(status),
            "errorCode": code,
            "errorMsg": message,
        }
    }


def run_started_body(action_is_group: bool, ident: str, reference: str) -> dict[str, object]:
    """The reply to a RUN_REPORT (an integer `statusCode` and stray spaces, as in the vendor sample) or an
    EXEC_REPORT_GROUP that started a run."""
    if not action_is_group:
        header: dict[str, object] = {
            "replyType": "SUCCESS",
            "reportId": f" {ident}",
            "referenceNumber": f" {reference} ",
            "success": "true",
            "statusCode": 200,
            "status": "SUCCESS",
        }
    else:
        header = {
            "replyType": "SUCCESS",
            "success": "true",
            "reportGroupStatus": {
                "referenceNumber": f" {reference} ",
                "reportGroupId": f" {ident} ",
                "statusCode": 200,
                "status": "SUCCESS",
            },
        }
    return {"headerMap": header}
