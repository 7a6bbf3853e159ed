"""The registry's vocabularies, defined once: outcome classes of a run, why runs are retired, and what a
registration came to. Plus the pure rule that turns final statuses into an outcome."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from sigma_exporter.sigma.replies import FINAL_STATUSES

SUCCESS: Final = "success"
NO_DATA: Final = "no_data"
FAILURE: Final = "failure"
ABANDONED: Final = "abandoned"
LOST: Final = "lost"
#: Every `outcome` of sigma_report_runs_total, each exported from zero.
OUTCOMES: Final = (SUCCESS, NO_DATA, FAILURE, ABANDONED, LOST)
#: Outcomes that set sigma_report_last_failure_timestamp_seconds.
FAILED_OUTCOMES: Final = frozenset({FAILURE, ABANDONED, LOST})

#: `reason` of sigma_runs_retired_total.
RETIRE_REASONS: Final = ("retention", "abandoned", "deleted", "removed")
#: `result` of sigma_runs_registered_total.
REGISTER_RESULTS: Final = ("created", "existing", "rejected")
#: `state` of sigma_runs and the API's `state=` filter.
RUN_STATES: Final = ("active", "final")

_STATUS_OUTCOME: Final = {
    "PUBLISHED": SUCCESS,
    "NOTIFIED": SUCCESS,
    "NO_DATA_AVAILABLE": NO_DATA,
    "FAILED": FAILURE,
    "NOTIFICATION_FAILED": FAILURE,
}
assert set(_STATUS_OUTCOME) == FINAL_STATUSES


def outcome_of_status(status: str) -> str | None:
    """The outcome of one report's status, None while it is not final."""
    return _STATUS_OUTCOME.get(status)


def outcome_of_run(statuses: Iterable[str]) -> str | None:
    """A run's outcome once every report of it is final: failure if any failed, no_data if all had no
    data, else success. None while any report is not final (or there is none)."""
    outcomes = [outcome_of_status(s) for s in statuses]
    if not outcomes or any(o is None for o in outcomes):
        return None
    if FAILURE in outcomes:
        return FAILURE
    if all(o == NO_DATA for o in outcomes):
        return NO_DATA
    return SUCCESS
