"""Report identities and their history as the API shows them (design.md, "A report's history"). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma_exporter.metrics.links import PAGE_PATH, identity_query
from sigma_exporter.runs.store.jsonforms import history_run_fields
from sigma_exporter.runs.store.records import ExpectedRun, History, HistoryRun, IdentityRecord

HISTORY_PATH = "/api/v1/reports/history"
MAX_ID = 256


def view_of_identity(record: IdentityRecord) -> dict[str, Any]:
    """An identity in `GET /api/v1/reports`."""
    query = identity_query(record.report_group_id, record.report_id)
    return {
        "report_group_id": record.report_group_id,
        "report_id": record.report_id,
        "kind": "group" if record.report_group_id and not record.report_id else "report",
        "report_name": record.report_name,
        "labels": dict(record.labels),
        "last_success": record.last_success,
        "last_failure": record.last_failure,
        "last_duration_seconds": record.last_duration,
        "runs": dict(record.outcomes),
        "missed": record.missed,
        "overdue": record.overdue,
        "history": f"{HISTORY_PATH}?{query}",
        "page": f"/{PAGE_PATH}?{query}",
    }


def view_of_history_run(run: HistoryRun) -> dict[str, Any]:
    """A run in a history."""
    return {"reference": run.reference, **history_run_fields(run)}


def view_of_expected(item: ExpectedRun) -> dict[str, Any]:
    """A judged expected time in a history."""
    return {
        "expected_at": item.expected_at,
        "started_at": item.started_at,
        "late": item.late,
        "missed": item.missed,
    }


def view_of_history(history: History) -> dict[str, Any]:
    """`GET /api/v1/reports/history`: the identity, its runs and its judged expected times, newest first."""
    return {
        "report_group_id": history.identity.report_group_id,
        "report_id": history.identity.report_id,
        "report_name": history.identity.report_name,
        "runs": [view_of_history_run(r) for r in history.runs],
        "expected": [view_of_expected(e) for e in history.expected],
    }


def identity_of_query(query: Mapping[str, str]) -> tuple[str, str]:
    """The identity a query names (neither id: none, which is never held); raises ValueError (the message
    says why) for an id too long to be one."""
    group = query.get("report_group_id", "").strip()
    report = query.get("report_id", "").strip()
    if len(group) > MAX_ID or len(report) > MAX_ID:
        raise ValueError(f"report_group_id and report_id are at most {MAX_ID} characters")
    return group, report
