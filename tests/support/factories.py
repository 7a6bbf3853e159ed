"""Small builders of configs, runs and replies for the unit tests (no file, no network)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sigma_exporter.config.load import Config, parse_config
from sigma_exporter.config.model import Reference
from sigma_exporter.runs.held import HeldRun, Observation, ReportRow
from sigma_exporter.sigma.replies import ReportReply, ReportResult


def config(**sections: Any) -> Config:
    """A valid config: a Sigma URL and API-key auth, plus the given sections."""
    data: dict[str, Any] = {
        "sigma": {
            "url": "http://sigma.invalid:9081/sigma/rest/reports",
            "auth": {"type": "apikey", "client_id": "id", "client_token": "token-token"},
            "timeout_seconds": 1,
        },
        **sections,
    }
    return parse_config(data, "unit.yml", environ={})


def api_ref(reference: str, report_id: str = "rpt-1", registered_at: float = 1000.0) -> Reference:
    """A run registered through the API."""
    return Reference(reference, "report", source="api", report_id=report_id, registered_at=registered_at)


def run(
    reference: str,
    *statuses: str,
    source: str = "api",
    rechecks: int = 0,
    last_check: float | None = None,
) -> HeldRun:
    """A held report run (a group run with several `statuses`), its reports seen in `statuses` (up)."""
    ref = replace(api_ref(reference), source=source, kind="group" if len(statuses) > 1 else "report")
    held = HeldRun(ref, rechecks=rechecks, last_check=last_check)
    if statuses:
        held.up = True
        held.rows = tuple(
            ReportRow("", f"rpt-{i}", "Report", status, 1.0) for i, status in enumerate(statuses)
        )
    return held


def seen(ref: Reference, status: str, at: float, **result: Any) -> Observation:
    """A check of `ref` that found its report in `status`."""
    report = ReportResult(report_id=ref.report_id or "rpt-1", report_name="Report", status=status, **result)
    return Observation(ref, ReportReply(report), None, at, True)
