"""Runs as the API shows them (design.md, "API contract"). Pure."""

from __future__ import annotations

from typing import Any

from sigma_exporter.config.model import Reference
from sigma_exporter.metrics.snapshot import ReferenceState
from sigma_exporter.runs.outcomes import FAILURE, outcome_of_status
from sigma_exporter.runs.store.records import RunRecord


def run_status(statuses: list[str]) -> str | None:
    """One status for a run: a report's own; for a group, the first member still running, else a failure
    if any member failed, else the last member's status."""
    if not statuses:
        return None
    running = [s for s in statuses if outcome_of_status(s) is None]
    if running:
        return running[0]
    failed = [s for s in statuses if outcome_of_status(s) == FAILURE]
    return failed[0] if failed else statuses[-1]


def _base(ref: Reference) -> dict[str, Any]:
    return {
        "reference": ref.reference,
        "kind": ref.kind,
        "source": ref.source,
        "labels": dict(ref.labels),
        "report_id": ref.report_id,
        "report_group_id": ref.report_group_id,
        "submitted_at": ref.submitted_at,
        "registered_at": ref.registered_at or None,
        "status": None,
        "since": None,
        "final_at": None,
        "up": False,
    }


def view_of_state(state: ReferenceState) -> dict[str, Any]:
    """A published run as the API shows it: its registration, one status (see `run_status`), the latest since,
    final_at and up."""
    view = _base(state.ref)
    rows = state.reports
    if rows:
        if state.ref.kind == "report" and rows[0].report_id:
            view["report_id"] = rows[0].report_id
        group = next((r.report_group_id for r in rows if r.report_group_id), "")
        if group:
            view["report_group_id"] = group
        view["status"] = run_status([r.status for r in rows])
        view["since"] = max(r.since for r in rows)
    view["final_at"] = state.final_at
    view["up"] = state.up
    return view


def view_of_record(record: RunRecord) -> dict[str, Any]:
    """A run known from the store only (registered, not yet checked here, or held by another shard)."""
    view = _base(record.ref)
    if record.since:
        view["status"] = run_status([status for _, status, _ in record.since])
        view["since"] = max(since for _, _, since in record.since)
    view["final_at"] = record.final_at
    return view


def is_final(view: dict[str, Any]) -> bool:
    """The run of `view` has reached its first final status."""
    return view["final_at"] is not None


def view_of_ref(ref: Reference) -> dict[str, Any]:
    """A run just registered, before the poll thread has taken it."""
    return view_of_record(RunRecord(ref))
