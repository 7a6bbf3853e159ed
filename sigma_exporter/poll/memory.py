"""What the poller remembers of each reference between cycles, and the outcome of one check."""

from __future__ import annotations

from dataclasses import dataclass, field

from sigma_exporter.config.load import Reference
from sigma_exporter.metrics.snapshot import GroupCounts, ReportRow
from sigma_exporter.sigma.errors import SigmaError
from sigma_exporter.sigma.replies import FINAL_STATUSES, GroupReply, ReportReply, ReportResult


@dataclass
class Memory:
    """What the poller remembers of one reference between cycles (owned by the poll thread)."""

    ref: Reference
    up: bool = False
    last_check: float | None = None  # wall clock
    last_success: float | None = None  # monotonic
    last_error: str = ""
    last_error_reason: str = ""
    rows: tuple[ReportRow, ...] = ()
    group: GroupCounts | None = None
    since: dict[str, tuple[str, float]] = field(default_factory=dict)  # report_id -> (status, since)
    unknown_logged: set[str] = field(default_factory=set)
    first_seen_at: float | None = None  # wall clock, kept across restarts
    final_at: float | None = None  # when it was counted (its first final status)
    outcome: str = ""  # the outcome it was counted with; "" until then
    report_name: str = ""
    dirty: bool = True  # changed since it was last handed to the state store

    @property
    def final(self) -> bool:
        return self.up and bool(self.rows) and all(row.status in FINAL_STATUSES for row in self.rows)


@dataclass(frozen=True)
class Outcome:
    ref: Reference
    reply: ReportReply | GroupReply | None
    error: SigmaError | None
    checked_at: float
    reached: bool  # Sigma answered as an authenticated API (even if the answer was "no such reference")


def row_of(report: ReportResult, since: float) -> ReportRow:
    return ReportRow(
        report_group_id=report.report_group_id,
        report_id=report.report_id,
        report_name=report.report_name,
        status=report.status,
        since=since,
        error_code=report.error_code,
        error_msg=report.error_msg,
    )
