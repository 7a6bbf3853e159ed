"""One run as the exporter holds it between checks (`HeldRun`), what one check of it saw (`Observation`),
and the rows of its reports as last seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sigma_exporter.config.model import Reference
from sigma_exporter.sigma.errors import SigmaError
from sigma_exporter.sigma.replies import END_STATUSES, FINAL_STATUSES, GroupReply, ReportReply, ReportResult

Key = tuple[str, str]  # (kind, reference): a run's key
UNSHOWN: Final = frozenset({"shown", "dirty", "start_mono", "since_mono"})  # fields no snapshot shows


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One report of a run as last seen. Group members carry their group's reference."""

    report_group_id: str
    report_id: str
    report_name: str
    status: str
    since: float
    error_code: str = ""
    error_msg: str = ""


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """A group run's own counts, as the API reports them (None when it sent none)."""

    failures: int | None
    successes: int | None
    members: int | None


@dataclass(frozen=True, slots=True)
class Observation:
    """What one check of a run saw: a reply or an error, when, and whether Sigma answered as an
    authenticated API (even if the answer was "no such reference")."""

    ref: Reference
    reply: ReportReply | GroupReply | None
    error: SigmaError | None
    checked_at: float
    reached: bool
    checked_mono: float | None = None  # the monotonic clock at `checked_at` (None: not known)


@dataclass(slots=True)
class HeldRun:
    """What the exporter knows of one run between checks. Owned by the poll thread."""

    ref: Reference
    up: bool = False
    last_check: float | None = None  # wall clock, kept across restarts
    rechecks: int = 0  # good checks since it was first seen in its current final statuses
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
    # The monotonic clock (this process only, never stored) when the run started as seen here, and when each
    # report's current status was first seen: a duration seen from end to end is measured with them.
    start_mono: float | None = None
    since_mono: dict[str, float] = field(default_factory=dict)
    # What the publisher last made of this run; any assignment to another field clears it, so an unchanged
    # run costs a cycle nothing. The publisher owns its type (this stage does not know the snapshot's).
    shown: object = field(default=None, init=False, compare=False, repr=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name not in UNSHOWN:
            object.__setattr__(self, "shown", None)

    @property
    def final(self) -> bool:
        """Every report of the run is in a final status, as last seen."""
        return self.up and bool(self.rows) and all(row.status in FINAL_STATUSES for row in self.rows)

    @property
    def ended(self) -> bool:
        """Every report of the run is in an end status (nothing documented follows), as last seen."""
        return self.up and bool(self.rows) and all(row.status in END_STATUSES for row in self.rows)


def row_of(report: ReportResult, since: float) -> ReportRow:
    """A parsed report as the row the exporter keeps, its status seen since `since`."""
    return ReportRow(
        report_group_id=report.report_group_id,
        report_id=report.report_id,
        report_name=report.report_name,
        status=report.status,
        since=since,
        error_code=report.error_code,
        error_msg=report.error_msg,
    )
